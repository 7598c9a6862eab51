// Image rows in a forward pass (VISION.md section 6): rows whose embedding is given (BatchEntry.embd)
// replace the token's, and when any row of the batch is an image row or comes after one
// (BatchEntry.mpos), q and k turn by M-RoPE positions (t, h, w) instead of the one position:
// ropeMulti with the model's section map. A batch of text rows only takes the plain rope() call,
// so text-only outputs stay what they were bit for bit.
import { fail } from '../errors.js';
import type { Backend, RopeFreqs } from '../backend/backend.js';
import type { QwenConfig } from './config.js';
import type { BatchEntry } from './kv_cache.js';
import { mropeSect } from './rope.js';

/** The batch's M-RoPE positions [T, 3] (t, h, w; a row without mpos: pos, pos, pos), or undefined
 * when no row has mpos or embd (then plain RoPE). */
export function batchMpos(batch: readonly BatchEntry[]): Int32Array | undefined {
  if (!batch.some((e) => e.mpos || e.embd)) return undefined;
  const pos = new Int32Array(batch.length * 3);
  batch.forEach((e, t) => {
    const m = e.mpos ?? [e.pos, e.pos, e.pos];
    for (let j = 0; j < 3; j++) {
      const v = m[j]!;
      if (!Number.isSafeInteger(v) || v < 0 || v > 0x7fffffff) fail(`batch row ${t}: M-RoPE position ${JSON.stringify(m)} must be three non-negative integers`);
      pos[t * 3 + j] = v;
    }
  });
  return pos;
}

/** Overwrite the embedding rows x [T, D] of the rows that bring their own (image rows). */
export function applyEmbd(x: Float32Array, batch: readonly BatchEntry[], D: number): void {
  batch.forEach((e, t) => {
    if (!e.embd) return;
    if (e.embd.length !== D) fail(`batch row ${t}: an embedding row of ${e.embd.length} values for a model of hidden_size ${D}`);
    x.set(e.embd, t * D);
  });
}

const sects = new WeakMap<QwenConfig, Map<number, Uint8Array>>();

/** The model's M-RoPE section map for nRot rotated dims (memoised per config), or an error when it has none. */
function sectFor(c: QwenConfig, nRot: number): Uint8Array {
  let m = sects.get(c);
  if (!m) sects.set(c, (m = new Map()));
  let s = m.get(nRot);
  if (!s) {
    if (!c.mrope_section) fail(`this ${c.model_type} model has no M-RoPE sections (mrope_section / rope.dimension_sections), so it cannot take image rows`);
    m.set(nRot, (s = mropeSect(c.mrope_section, nRot, c.mrope_interleaved ? 'imrope' : 'mrope')));
  }
  return s;
}

/**
 * x [T, H*Dh] turned by RoPE in place: plain rope() at `positions` when `mpos` is undefined, else
 * ropeMulti at mpos [T, 3] with the model's sections.
 */
export function ropeRows(
  be: Backend,
  c: QwenConfig,
  x: Float32Array,
  positions: Int32Array,
  mpos: Int32Array | undefined,
  T: number,
  H: number,
  Dh: number,
  theta: number | RopeFreqs,
  nRot = Dh,
): void {
  if (!mpos) be.rope(x, positions, T, H, Dh, theta, nRot);
  else be.ropeMulti(x, mpos, 3, sectFor(c, nRot), T, H, Dh, theta, nRot);
}
