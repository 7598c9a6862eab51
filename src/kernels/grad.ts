// Backward products for LoRA training (src/train/): dx = dy W through a frozen weight of any
// stored type, and weight gradients a^T b. Each part owns a set of output columns: a chunk of
// W's columns is decoded NB rows at a time into the part's scratch, then every dy row takes it
// while it is in cache. An output element sums over n in order (partial sums per NB rows added
// into the output), the same whatever the thread count.
import { madd, split } from './common';
import { DT_F32, dequant_row, row_bytes } from './dequant';

const NB = 64; // weight rows decoded per step

/** Values per block of a stored type (dequant.ts ids): 1 (floats), 32 or 256 (K-quants, IQ4_XS). */
function block_of(dtype: i32): i32 {
  if (dtype <= 2) return 1;
  if (dtype == 5 || dtype == 6 || dtype == 10 || dtype == 11 || dtype == 12 || dtype == 14) return 256;
  return 32;
}

/** Columns of one chunk: a whole number of blocks, at least 64, at most K. */
function chunk_of(dtype: i32, K: i32): i32 {
  const b = block_of(dtype), c = b > 64 ? b : 64;
  return c < K ? c : K;
}

/** Bytes of scratch one part of matmul_t needs. */
export function mmt_scratch_bytes(dtype: i32, K: i32): i32 {
  return NB * chunk_of(dtype, K) * 4;
}

/** The number of column chunks of K (the most parts worth running). */
export function mmt_chunks(dtype: i32, K: i32): i32 {
  const c = chunk_of(dtype, K);
  return (K + c - 1) / c;
}

/**
 * out [T, K] = d w (acc: out += d w), w [N, K] of any stored type, d [T, N] read with strides: element (t, n) at
 * d + t*drs + n*dcs bytes (dy as stored: drs = 4N, dcs = 4; a^T of a [N', T']: drs = 4, dcs = 4T').
 * scratch + part*sstride: mmt_scratch_bytes.
 */
export function matmul_t(part: i32, parts: i32, out: usize, d: usize, drs: i32, dcs: i32, w: usize, T: i32, N: i32, K: i32, dtype: i32, scratch: usize, sstride: i32, acc: i32): void {
  scratch += <usize>part * sstride;
  const cw = chunk_of(dtype, K), chunks = (K + cw - 1) / cw;
  const c0 = split(chunks, part, parts, 1), c1 = split(chunks, part + 1, parts, 1);
  const rb = row_bytes(dtype, K), os = <usize>K << 2;
  for (let c = c0; c < c1; c++) {
    const k0 = c * cw, kw = min(cw, K - k0), kb = row_bytes(dtype, k0);
    for (let n0 = 0; n0 < N; n0 += NB) {
      const nn = min(NB, N - n0);
      let tile: usize = scratch, ts: usize = <usize>kw << 2;
      if (dtype == DT_F32) {
        tile = w + <usize>n0 * rb + kb;
        ts = rb;
      } else for (let i = 0; i < nn; i++) dequant_row(dtype, w + <usize>(n0 + i) * rb + kb, scratch + <usize>i * ts, kw);
      const first = n0 == 0 && acc == 0;
      const dn = d + <usize>n0 * dcs;
      for (let t = 0; t < T; t += 4) {
        const rows = min(4, T - t);
        const o = out + <usize>t * os + (<usize>k0 << 2), dr = dn + <usize>t * drs;
        let j = 0;
        if (rows == 4) for (; j + 8 <= kw; j += 8) tile4x8(o + (<usize>j << 2), os, dr, drs, dcs, tile + (<usize>j << 2), ts, nn, first);
        for (let i = 0; i < rows; i++) {
          const oi = o + <usize>i * os, di = dr + <usize>i * drs;
          let jj = j;
          for (; jj + 4 <= kw; jj += 4) tile1x4(oi + (<usize>jj << 2), di, dcs, tile + (<usize>jj << 2), ts, nn, first);
          for (; jj < kw; jj++) tile1x1(oi + (<usize>jj << 2), di, dcs, tile + (<usize>jj << 2), ts, nn, first);
        }
      }
    }
  }
}

/** Four output rows x eight columns over nn weight rows (8 accumulators in registers). */
@inline function tile4x8(o: usize, os: usize, d: usize, drs: i32, dcs: i32, w: usize, ws: usize, nn: i32, first: bool): void {
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
  let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
  const r = <usize>drs, c = <usize>dcs;
  let d0 = d, d1 = d + r, d2 = d1 + r, d3 = d2 + r, wr = w;
  const end = w + <usize>nn * ws;
  while (wr < end) {
    const w0 = v128.load(wr), w1 = v128.load(wr, 16);
    let g = v128.load32_splat(d0);
    a00 = madd(w0, g, a00); a01 = madd(w1, g, a01);
    g = v128.load32_splat(d1);
    a10 = madd(w0, g, a10); a11 = madd(w1, g, a11);
    g = v128.load32_splat(d2);
    a20 = madd(w0, g, a20); a21 = madd(w1, g, a21);
    g = v128.load32_splat(d3);
    a30 = madd(w0, g, a30); a31 = madd(w1, g, a31);
    wr += ws; d0 += c; d1 += c; d2 += c; d3 += c;
  }
  put(o, a00, first); put(o + 16, a01, first);
  put(o + os, a10, first); put(o + os + 16, a11, first);
  put(o + 2 * os, a20, first); put(o + 2 * os + 16, a21, first);
  put(o + 3 * os, a30, first); put(o + 3 * os + 16, a31, first);
}

@inline function tile1x4(o: usize, d: usize, dcs: i32, w: usize, ws: usize, nn: i32, first: bool): void {
  let a = f32x4.splat(0);
  for (let n = 0; n < nn; n++) a = madd(v128.load(w + <usize>n * ws), v128.load32_splat(d + <usize>n * dcs), a);
  put(o, a, first);
}

@inline function tile1x1(o: usize, d: usize, dcs: i32, w: usize, ws: usize, nn: i32, first: bool): void {
  let a = f32x4.splat(0); // lane 0 only: the same madd steps as the vector tiles
  for (let n = 0; n < nn; n++) a = madd(f32x4.splat(load<f32>(w + <usize>n * ws)), f32x4.splat(load<f32>(d + <usize>n * dcs)), a);
  const v = f32x4.extract_lane(a, 0);
  store<f32>(o, first ? v : load<f32>(o) + v);
}

@inline function put(o: usize, a: v128, first: bool): void {
  v128.store(o, first ? a : f32x4.add(v128.load(o), a));
}
