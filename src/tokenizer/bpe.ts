// Byte-level BPE model: a word's UTF-8 bytes start as one symbol each; the adjacent pair with the
// best (lowest) merge rank is merged, leftmost first on ties, until no pair has a merge. This is
// the order Hugging Face's priority queue produces (ranks, then positions) and llama.cpp's too.
// Symbols are token ids throughout, so no strings are built on the hot path; results are cached
// per word because natural text repeats words constantly.
import { fail, quote } from '../errors.js';
import { BYTE_TO_CHAR, bytesToByteChars, encodeUtf8 } from './bytes.js';

export interface BpeOptions {
  /** Hugging Face `ignore_merges`: a word that is itself in the vocabulary is one token. */
  ignoreMerges?: boolean;
  /** where the data came from, for error messages */
  source?: string;
}

const CACHE_MAX = 1 << 17;
const CACHE_WORD_MAX = 256; // longer words are rare and would bloat the cache
// Up to this many bytes the quadratic in-place scan is fastest; longer words (a run of 10,000
// spaces is one word) use a linked list and a heap, O(n log n).
const SHORT_WORD = 48;

/** A merge rule: "a b" (tokenizer.json before 2024, GGUF, merges.txt) or ["a", "b"]. */
export type Merge = string | readonly [string, string];

/** Split a merge rule into its two parts, or undefined when it is malformed. */
export function mergeParts(m: Merge): [string, string] | undefined {
  if (typeof m === 'string') {
    const sp = m.indexOf(' ', 1);
    if (sp <= 0 || sp === m.length - 1 || m.indexOf(' ', sp + 1) >= 0) return undefined;
    return [m.slice(0, sp), m.slice(sp + 1)];
  }
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
  return undefined;
}

/**
 * Open-addressing hash of pair (a, b) -> (rank, merged id) in typed arrays: no boxed keys, so it
 * builds and answers several times faster than a Map keyed by a * stride + b.
 */
class MergeTable {
  private readonly mask: number;
  private readonly ka: Int32Array;
  private readonly kb: Int32Array;
  /** rank * 2^21 + merged id, so that comparing values compares ranks; -1 = empty slot */
  private readonly val: Float64Array;
  size = 0;
  constructor(n: number) {
    let cap = 16;
    while (cap < n * 2) cap *= 2;
    this.mask = cap - 1;
    this.ka = new Int32Array(cap);
    this.kb = new Int32Array(cap);
    this.val = new Float64Array(cap).fill(-1);
  }
  private slot(a: number, b: number): number {
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) & this.mask;
    while (this.val[h] !== -1 && (this.ka[h] !== a || this.kb[h] !== b)) h = (h + 1) & this.mask;
    return h;
  }
  /** Insert unless present (the first, best rank of a duplicated merge wins, as in Hugging Face). */
  add(a: number, b: number, v: number): void {
    const h = this.slot(a, b);
    if (this.val[h] !== -1) return;
    this.ka[h] = a;
    this.kb[h] = b;
    this.val[h] = v;
    this.size++;
  }
  /** rank * 2^21 + merged id, or Infinity when (a, b) does not merge */
  get(a: number, b: number): number {
    const v = this.val[this.slot(a, b)]!;
    return v === -1 ? Infinity : v;
  }
}

/** merged id = value % ID_SPACE; ids must stay below it */
const ID_SPACE = 2 ** 21;

export class BpeModel {
  /** byte-level token string -> id */
  readonly vocab: Map<string, number>;
  /** id -> byte-level token string (holes possible) */
  readonly tokens: string[];
  private readonly byteIds = new Int32Array(256);
  private readonly merges: MergeTable;
  private readonly ignoreMerges: boolean;
  private cache = new Map<string, number | number[]>();
  private buf: Uint8Array = new Uint8Array(1024);
  // scratch for the merge loop
  private sym = new Int32Array(256);
  private rank = new Float64Array(256);

  /**
   * @param vocab  byte-level token string -> id
   * @param merges merge rules, best first
   */
  constructor(vocab: Map<string, number>, merges: readonly Merge[], opts: BpeOptions = {}) {
    const src = opts.source ?? 'tokenizer';
    this.vocab = vocab;
    this.ignoreMerges = opts.ignoreMerges ?? false;
    let maxId = -1;
    for (const id of vocab.values()) if (id > maxId) maxId = id;
    if (maxId >= ID_SPACE) fail(`${src}: vocabulary of ${maxId + 1} tokens is too large`);
    this.tokens = new Array<string>(maxId + 1);
    for (const [t, id] of vocab) this.tokens[id] = t;
    for (let b = 0; b < 256; b++) {
      const id = vocab.get(String.fromCharCode(BYTE_TO_CHAR[b]!));
      // a byte without a token makes some text unencodable: Qwen's vocabulary has all 256
      this.byteIds[b] = id ?? -1;
    }
    if (merges.length >= ID_SPACE) fail(`${src}: ${merges.length} merges are too many`);
    this.merges = new MergeTable(merges.length);
    for (let r = 0; r < merges.length; r++) {
      const p = mergeParts(merges[r]!);
      if (!p) fail(`${src}: merge #${r} ${JSON.stringify(merges[r])} is not two tokens ("a b" or ["a", "b"])`);
      const [l, rt] = p;
      const a = vocab.get(l),
        b = vocab.get(rt),
        m = vocab.get(l + rt);
      if (a === undefined || b === undefined) fail(`${src}: merge #${r} ${quote(`${l} ${rt}`)} uses a token that is not in the vocabulary`);
      if (m === undefined) fail(`${src}: merge #${r} ${quote(`${l} ${rt}`)} makes ${quote(l + rt)}, which is not in the vocabulary`);
      this.merges.add(a, b, r * ID_SPACE + m);
    }
  }

  get mergeCount(): number {
    return this.merges.size;
  }

  /** Append the ids of one pre-tokenized word to `out`. */
  encodeWord(word: string, out: number[]): void {
    const hit = this.cache.get(word);
    if (hit !== undefined) {
      if (typeof hit === 'number') out.push(hit);
      else for (let i = 0; i < hit.length; i++) out.push(hit[i]!);
      return;
    }
    const start = out.length;
    this.bpe(word, out);
    if (word.length <= CACHE_WORD_MAX) {
      if (this.cache.size >= CACHE_MAX) this.cache = new Map();
      this.cache.set(word, out.length - start === 1 ? out[start]! : out.slice(start));
    }
  }

  private bpe(word: string, out: number[]): void {
    const [buf, n] = encodeUtf8(word, this.buf);
    this.buf = buf;
    if (this.ignoreMerges) {
      const whole = this.vocab.get(bytesToByteChars(buf, n));
      if (whole !== undefined) {
        out.push(whole);
        return;
      }
    }
    if (this.sym.length < n) {
      this.sym = new Int32Array(n * 2);
      this.rank = new Float64Array(n * 2);
    }
    const sym = this.sym,
      rank = this.rank,
      merges = this.merges;
    for (let i = 0; i < n; i++) {
      const id = this.byteIds[buf[i]!]!;
      if (id < 0) fail(`tokenizer: byte 0x${buf[i]!.toString(16)} has no token in the vocabulary`);
      sym[i] = id;
    }
    if (n > SHORT_WORD) {
      this.bpeLong(n, out);
      return;
    }
    // rank[i] = merge value for pair (sym[i], sym[i+1]), Infinity when none
    const pairValue = (a: number, b: number) => merges.get(a, b);
    let len = n;
    for (let i = 0; i + 1 < len; i++) rank[i] = pairValue(sym[i]!, sym[i + 1]!);
    // Scan for the best pair and merge it in place: O(n^2) but n is a word (a few bytes) and the
    // pair values are cached in rank[], so each step is one linear scan plus two map lookups.
    while (len > 1) {
      let best = Infinity,
        at = -1;
      for (let i = 0; i + 1 < len; i++) {
        const v = rank[i]!;
        if (v < best) {
          best = v;
          at = i;
        }
      }
      if (at < 0) break;
      sym[at] = best % ID_SPACE;
      for (let i = at + 1; i + 1 < len; i++) {
        sym[i] = sym[i + 1]!;
        rank[i] = rank[i + 1]!;
      }
      len--;
      if (at > 0) rank[at - 1] = pairValue(sym[at - 1]!, sym[at]!);
      if (at + 1 < len) rank[at] = pairValue(sym[at]!, sym[at + 1]!);
    }
    for (let i = 0; i < len; i++) out.push(sym[i]!);
  }

  /** The same merges for long words, with a binary heap of (value, position) and a linked list. */
  private bpeLong(n: number, out: number[]): void {
    const sym = this.sym,
      merges = this.merges;
    const next = new Int32Array(n),
      prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const alive = new Uint8Array(n).fill(1);
    // heap of candidate pairs; stale entries are skipped when popped
    let hv = new Float64Array(n),
      hp = new Int32Array(n),
      size = 0;
    const less = (i: number, j: number) => hv[i]! < hv[j]! || (hv[i] === hv[j] && hp[i]! < hp[j]!);
    const swap = (i: number, j: number) => {
      const v = hv[i]!,
        p = hp[i]!;
      hv[i] = hv[j]!;
      hp[i] = hp[j]!;
      hv[j] = v;
      hp[j] = p;
    };
    const push = (pos: number) => {
      const j = next[pos]!;
      if (j < 0) return;
      const v = merges.get(sym[pos]!, sym[j]!);
      if (v === Infinity) return;
      if (size === hv.length) {
        const nv = new Float64Array(size * 2),
          np = new Int32Array(size * 2);
        nv.set(hv);
        np.set(hp);
        hv = nv;
        hp = np;
      }
      let i = size++;
      hv[i] = v;
      hp[i] = pos;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!less(i, p)) break;
        swap(i, p);
        i = p;
      }
    };
    const pop = () => {
      size--;
      swap(0, size);
      let i = 0;
      for (;;) {
        const l = 2 * i + 1,
          r = l + 1;
        let m = i;
        if (l < size && less(l, m)) m = l;
        if (r < size && less(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (size > 0) {
      const v = hv[0]!,
        pos = hp[0]!;
      pop();
      const j = next[pos]!;
      // stale when either symbol has changed since the entry was pushed
      if (!alive[pos] || j < 0 || merges.get(sym[pos]!, sym[j]!) !== v) continue;
      sym[pos] = v % ID_SPACE;
      alive[j] = 0;
      const k = next[j]!;
      next[pos] = k;
      if (k >= 0) prev[k] = pos;
      if (prev[pos]! >= 0) push(prev[pos]!);
      push(pos);
    }
    for (let i = 0; i >= 0; i = next[i]!) out.push(sym[i]!);
  }
}
