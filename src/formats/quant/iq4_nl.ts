// block_iq4_nl (ggml-common.h): f16 d, then 16 bytes qs; 18 bytes per 32 values. Byte j holds
// element j in its low nibble and element j+16 in its high nibble, each an index into the
// non-linear table kvalues_iq4nl; y = d * kvalues[q] (dequantize_row_iq4_nl).
// The quantiser here (quantize_row_iq4_nl_impl) is shared with IQ4_XS.
import { f16At } from './block.js';
import { f32ToF16 } from './half.js';
import { nearestInt } from './kblock.js';

const fr = Math.fround;
const GROUP_MAX_EPS = fr(1e-15);

export const QK4_NL = 32;
export const BLOCK_IQ4_NL_BYTES = 18;

/** kvalues_iq4nl (ggml-common.h). */
export const KVALUES_IQ4NL: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

export function dequantizeIQ4_NL(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  const kv = KVALUES_IQ4NL;
  for (let b = 0, p = srcOffset, o = dstOffset; b < nBlocks; b++, p += BLOCK_IQ4_NL_BYTES, o += QK4_NL) {
    const d = f16At(src, p); // d * kvalue is exact in binary32 (11 + 7 significant bits)
    for (let j = 0; j < 16; j++) {
      const q = src[p + 2 + j]!;
      dst[o + j] = d * kv[q & 0xf]!;
      dst[o + j + 16] = d * kv[q >>> 4]!;
    }
  }
}

/** best_index_int8: the index of the table value nearest x (the upper one wins a tie). */
function bestIndex(x: number): number {
  const kv = KVALUES_IQ4NL;
  if (x <= kv[0]!) return 0;
  if (x >= kv[15]!) return 15;
  let ml = 0,
    mu = 15;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < kv[mav]!) mu = mav;
    else ml = mav;
  }
  return fr(x - kv[mu - 1]!) < fr(kv[mu]! - x) ? mu - 1 : mu;
}

/**
 * quantize_row_iq4_nl_impl without importance weights, for one super-block of `sbs` values at
 * x[xo..] (32 for IQ4_NL, 256 for IQ4_XS) in blocks of 32: writes the f16 d at dst[p], the
 * nibbles at dst[q..], and for IQ4_XS (sbs 256) the 6-bit block scales at dst[p+2..p+8).
 * `ntry` is 7 in quantize_iq4_nl / quantize_iq4_xs (what llama-quantize runs), -1 in
 * quantize_row_iq4_nl_ref.
 */
export function quantizeIq4Impl(sbs: number, x: Float32Array, xo: number, dst: Uint8Array, p: number, q: number, ntry: number, L: Uint8Array, scales: Float32Array, weight: Float32Array): void {
  const kv = KVALUES_IQ4NL;
  const v0 = kv[0]!;
  dst.fill(0, q, q + sbs / 2);
  let maxScale = 0,
    amaxScale = 0;
  const nb = sbs / 32;
  for (let ib = 0; ib < nb; ib++) {
    const s = xo + 32 * ib;
    for (let j = 0; j < 32; j++) weight[j] = fr(x[s + j]! * x[s + j]!);
    let amax = 0,
      max = 0;
    for (let j = 0; j < 32; j++) {
      const ax = Math.abs(x[s + j]!);
      if (ax > amax) {
        amax = ax;
        max = x[s + j]!;
      }
    }
    if (amax < GROUP_MAX_EPS) {
      scales[ib] = 0;
      continue;
    }
    let d = ntry > 0 ? fr(-max / v0) : fr(max / v0);
    let id = fr(1 / d);
    let sumqx = 0,
      sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const l = bestIndex(fr(id * x[s + j]!));
      L[32 * ib + j] = l;
      const qv = kv[l]!,
        w = weight[j]!;
      sumqx = fr(sumqx + fr(fr(w * qv) * x[s + j]!));
      sumq2 = fr(sumq2 + fr(fr(w * qv) * qv));
    }
    d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
    let best = fr(d * sumqx);
    for (let itry = -ntry; itry <= ntry; itry++) {
      id = fr((itry + v0) / max);
      sumqx = 0;
      sumq2 = 0;
      for (let j = 0; j < 32; j++) {
        const qv = kv[bestIndex(fr(id * x[s + j]!))]!,
          w = weight[j]!;
        sumqx = fr(sumqx + fr(fr(w * qv) * x[s + j]!));
        sumq2 = fr(sumq2 + fr(fr(w * qv) * qv));
      }
      if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
        d = fr(sumqx / sumq2);
        best = fr(d * sumqx);
      }
    }
    scales[ib] = d;
    if (Math.abs(d) > amaxScale) {
      amaxScale = Math.abs(d);
      maxScale = d;
    }
  }
  let dh: number;
  if (nb > 1) {
    // the levels are redone against the unrounded d (not the stored f16), as ggml does
    const d = fr(-maxScale / 32);
    dh = f32ToF16(d);
    const id = d ? fr(1 / d) : 0;
    let sh = 0;
    dst.fill(0, p + 4, p + 8);
    for (let ib = 0; ib < nb; ib++) {
      let l = Math.max(-32, Math.min(31, nearestInt(fr(id * scales[ib]!))));
      const dl = fr(d * l);
      const idl = dl ? fr(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndex(fr(idl * x[xo + 32 * ib + j]!));
      l += 32;
      dst[p + 4 + (ib >> 1)] |= (l & 0xf) << (4 * (ib & 1));
      sh |= (l >> 4) << (2 * ib);
    }
    dst[p + 2] = sh & 0xff;
    dst[p + 3] = sh >>> 8;
  } else {
    dh = f32ToF16(scales[0]!);
    if (ntry > 0) {
      const id = scales[0] ? fr(1 / scales[0]!) : 0;
      for (let j = 0; j < sbs; j++) L[j] = bestIndex(fr(id * x[xo + j]!));
    }
  }
  dst[p] = dh & 0xff;
  dst[p + 1] = dh >>> 8;
  for (let i = 0; i < sbs / 32; i++) {
    for (let j = 0; j < 16; j++) dst[q + 16 * i + j] = L[32 * i + j]! | (L[32 * i + 16 + j]! << 4);
  }
}

/** quantize_iq4_nl without an importance matrix (ntry 7), what llama-quantize writes. */
export function quantizeIQ4_NL(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const L = new Uint8Array(32),
    scales = new Float32Array(1),
    weight = new Float32Array(32);
  for (let b = 0; b < nBlocks; b++) {
    const p = dstOffset + b * BLOCK_IQ4_NL_BYTES;
    quantizeIq4Impl(32, src, srcOffset + 32 * b, dst, p, p + 2, 7, L, scales, weight);
  }
}
