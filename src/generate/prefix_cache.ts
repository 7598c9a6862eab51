// Automatic prefix caching (as vLLM's): the keys and values of every full block of BLOCK tokens a
// sequence has evaluated are kept, keyed by a hash chain (a block's key hashes its parent's key and
// its own tokens, so one key names a whole prefix), and a new request whose prompt starts with
// cached blocks copies them into its own KV cache instead of recomputing them. Blocks are shared:
// prompts with the same system prompt store it once. The attention kernels read one contiguous
// cache per sequence, so cached rows are copied in (about a millisecond per thousand tokens on the
// 0.5B shape), not mapped. Gated DeltaNet layers (Qwen3.5) summarise a prefix in a state that cannot
// be rewound: for them a block is usable only where a checkpoint of that state was taken (the
// sequences take one at the last block boundary of their prompt and at their last one when they
// end). Memory: plain JS arrays (outside the backend's heap), least recently used evicted first
// within a byte budget; a prefix's root blocks are kept longer than its leaves. A block holds the
// rows as the KV cache stores them (--cache-type f16 / q8_0: 2x / 3.8x smaller than f32).
// Images: an image's rows sit on `<|image_pad|>` ids that say nothing of the image, so a block
// that holds any of them is keyed by the image's content hash (ImageEmbedding.hash) and where the
// image starts too; the chain carries that into every later block (whose M-RoPE positions follow
// the image's grid). Two prompts with the same image share blocks; another image does not.
import { createHash } from 'node:crypto';
import { fail } from '../errors.js';
import type { KvCache } from '../models/kv_cache.js';
import type { PromptImage } from '../vision/types.js';

/** tokens per cached block (vLLM's default) */
export const BLOCK = 16;

/** The default --cache-mem: 1 GiB. */
export const DEFAULT_CACHE_BYTES = 1 << 30;

interface Entry {
  rows: Float32Array;
  checkpoint?: Float32Array;
} // rows: KvCache.exportRows' words, in the cache's type

export interface PrefixHit {
  /** prompt tokens restored (a multiple of BLOCK, below the prompt's length) */
  tokens: number;
}

export interface PrefixCacheStats {
  /** bytes held now, and the budget */
  bytes: number;
  budget: number;
  blocks: number;
  checkpoints: number;
  evictions: number;
}

function blockKey(parent: string, tokens: readonly number[], images: readonly string[] = []): string {
  const h = createHash('sha256').update(parent).update(Int32Array.from(tokens));
  for (const s of images) h.update(s);
  return h.digest('base64');
}

/** What tells a placed image from another: its content hash, where its rows start, its grid. */
const imageKey = ({ start, image }: PromptImage) => `${image.hash}@${start}:${image.nx}x${image.ny}`;

/** The images whose rows fall in [from, to), as key material. */
function imagesIn(images: readonly PromptImage[] | undefined, from: number, to: number): string[] {
  const out: string[] = [];
  for (const p of images ?? []) if (p.start < to && p.start + p.image.nx * p.image.ny > from) out.push(`\0image:${imageKey(p)}`);
  return out;
}

/**
 * How many of the first `n` positions two prompts with the same ids there also share as rows: `n`,
 * or where the first image they place differently (another hash, start or grid) begins.
 */
export function sameRows(a: readonly PromptImage[] | undefined, b: readonly PromptImage[] | undefined, n: number): number {
  const bs = new Set((b ?? []).map(imageKey));
  const as = new Set((a ?? []).map(imageKey));
  let m = n;
  for (const p of a ?? []) if (p.start < m && !bs.has(imageKey(p))) m = p.start;
  for (const p of b ?? []) if (p.start < m && !as.has(imageKey(p))) m = p.start;
  return m;
}

export class PrefixCache {
  private readonly entries = new Map<string, Entry>(); // least recently used first
  private bytes = 0;
  private evictions = 0;
  private checkpoints = 0;

  /**
   * @param budget bytes the cached blocks and checkpoints may take
   * @param rowBytes bytes of one block's keys and values (in the cache's type); checkpointBytes: of one recurrent-state checkpoint (0: none)
   */
  constructor(
    readonly budget: number,
    private readonly rowBytes: number,
    private readonly checkpointBytes: number,
  ) {
    const least = rowBytes + checkpointBytes;
    const mib = (b: number) => (b < 1024 ? `${b} bytes` : b < 2 ** 20 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);
    if (!(budget >= least))
      fail(
        `--cache-mem ${mib(budget)} is too small for this model: one ${BLOCK}-token block of its keys and values takes ${mib(rowBytes)}${checkpointBytes ? ` and one checkpoint of its recurrent state ${mib(checkpointBytes)}` : ''}; give at least ${mib(least)}, or --no-prefix-cache`,
      );
  }

  /** A cache sized for `cache`'s model. */
  static for(cache: KvCache, budget: number): PrefixCache {
    return new PrefixCache(budget, 4 * cache.rowsFloats(BLOCK), 4 * cache.recurrentFloats);
  }

  stats(): PrefixCacheStats {
    return { bytes: this.bytes, budget: this.budget, blocks: this.entries.size, checkpoints: this.checkpoints, evictions: this.evictions };
  }

  /**
   * The chain keys of the first `n` full blocks of `tokens`; a LoRA adapter's chains have their own
   * root (its keys and values differ); a block holding image rows names the images.
   */
  private keys(tokens: readonly number[], n: number, adapter = 0, images?: readonly PromptImage[]): string[] {
    const out: string[] = [];
    for (let i = 0, parent = adapter ? `lora:${adapter}` : ''; i < n; i++)
      out.push((parent = blockKey(parent, tokens.slice(i * BLOCK, (i + 1) * BLOCK), imagesIn(images, i * BLOCK, (i + 1) * BLOCK))));
    return out;
  }

  /**
   * Restore the longest cached prefix of `prompt` into the empty `cache`: whole blocks, short of the
   * prompt's last token (its logits are needed), and for a recurrent model ending at a checkpoint.
   * `images`: the prompt's images (GenerateOptions.images): blocks with their rows match only the same images.
   */
  restore(prompt: readonly number[], cache: KvCache, adapter = 0, images?: readonly PromptImage[]): PrefixHit {
    const keys = this.keys(prompt, Math.floor((prompt.length - 1) / BLOCK), adapter, images);
    let use = 0;
    for (let i = 0; i < keys.length; i++) {
      const e = this.entries.get(keys[i]!);
      if (!e) break;
      if (!cache.recurrent || e.checkpoint) use = i + 1;
    }
    if (use === 0) return { tokens: 0 };
    for (let i = 0; i < use; i++) cache.importRows(i * BLOCK, BLOCK, this.entries.get(keys[i]!)!.rows);
    if (cache.recurrent) cache.importRecurrent(this.entries.get(keys[use - 1]!)!.checkpoint!);
    this.touch(keys.slice(0, use));
    return { tokens: use * BLOCK };
  }

  /**
   * Keep the full blocks of `tokens` (the sequence's evaluated tokens: `cache` holds their keys and
   * values) and, for a recurrent model, `checkpoint`: the state at position `checkpoint.pos` (a block
   * boundary). Blocks already cached are shared, not copied again. `images`: as for restore().
   */
  insert(tokens: readonly number[], cache: KvCache, checkpoint?: { pos: number; data: Float32Array }, adapter = 0, images?: readonly PromptImage[]): void {
    const n = Math.floor(Math.min(tokens.length, cache.length) / BLOCK);
    const keys = this.keys(tokens, n, adapter, images);
    const chain = new Set(keys);
    let kept = 0;
    for (let i = 0; i < n; i++, kept++) {
      if (this.entries.has(keys[i]!)) continue;
      if (!this.makeRoom(this.rowBytes, chain)) break; // the rest of a chain longer than the budget
      this.entries.set(keys[i]!, { rows: cache.exportRows(i * BLOCK, BLOCK) });
      this.bytes += this.rowBytes;
    }
    if (checkpoint && checkpoint.pos % BLOCK === 0 && checkpoint.pos > 0 && checkpoint.pos / BLOCK <= kept) {
      const e = this.entries.get(keys[checkpoint.pos / BLOCK - 1]!);
      if (e && !e.checkpoint && this.makeRoom(this.checkpointBytes, chain)) {
        e.checkpoint = checkpoint.data;
        this.bytes += this.checkpointBytes;
        this.checkpoints++;
      }
    }
    this.touch(keys.slice(0, kept).filter((k) => this.entries.has(k)));
  }

  /** Mark a chain used: its root ends most recent, so leaves are evicted before the blocks they extend. */
  private touch(keys: readonly string[]): void {
    for (let i = keys.length - 1; i >= 0; i--) {
      const e = this.entries.get(keys[i]!);
      if (!e) continue;
      this.entries.delete(keys[i]!);
      this.entries.set(keys[i]!, e);
    }
  }

  /** Evict least recently used entries (not those of `keep`) until `need` more bytes fit; false if they cannot. */
  private makeRoom(need: number, keep: ReadonlySet<string>): boolean {
    if (this.bytes + need <= this.budget) return true;
    for (const [k, e] of this.entries) {
      if (keep.has(k)) continue;
      this.entries.delete(k);
      this.bytes -= this.rowBytes + (e.checkpoint ? this.checkpointBytes : 0);
      if (e.checkpoint) this.checkpoints--;
      this.evictions++;
      if (this.bytes + need <= this.budget) return true;
    }
    return false;
  }

  /** Drop everything (the memory goes back to the garbage collector). */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
    this.checkpoints = 0;
  }
}
