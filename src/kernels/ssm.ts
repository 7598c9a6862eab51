// Elementwise and convolution ops of the Gated DeltaNet layers (Qwen3.5): the sigmoid output gate
// and the causal depthwise conv (+ SiLU) that runs over q, k and v before the delta rule.
import { madd, split } from './common';
import { exp4 } from './ops';

/** out = x * sigmoid(gate) over this part of n floats (out may alias either input). */
export function sigmoid_mul(part: i32, parts: i32, out: usize, gate: usize, x: usize, n: i32): void {
  const i0 = split(n, part, parts, 16), i1 = split(n, part + 1, parts, 16);
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const k = <usize>i << 2;
    v128.store(out + k, f32x4.div(v128.load(x + k), f32x4.add(one, exp4(f32x4.neg(v128.load(gate + k))))));
  }
  for (; i < i1; i++) {
    const k = <usize>i << 2;
    // exp4 here too: an element's result must not depend on whether it falls in a vector or the tail
    const e = f32x4.extract_lane(exp4(f32x4.splat(-load<f32>(gate + k))), 0);
    store<f32>(out + k, load<f32>(x + k) / (1 + e));
  }
}

@inline function silu4(s: v128): v128 {
  return f32x4.div(s, f32x4.add(f32x4.splat(1), exp4(f32x4.neg(s))));
}

/**
 * Causal depthwise conv (K taps, w [C, K]) then SiLU, per sequence; this part's channels of every
 * sequence. desc: per sequence three i32, its row list (i32 row indices), row count, conv state
 * [K-1, C] (the K-1 inputs before its first row; left holding the last K-1). Channels are split
 * in blocks of 4, so a channel takes the same path (vector or scalar tail) whatever the split.
 */
export function ssm_conv(part: i32, parts: i32, out: usize, x: usize, w: usize, C: i32, K: i32, desc: usize, nspans: i32, wt: usize): void {
  const c0 = split(C, part, parts, 4), c1 = split(C, part + 1, parts, 4);
  const rowB = <usize>C << 2;
  let transposed = false;
  for (let s = 0; s < nspans; s++) {
    const d = desc + <usize>s * 12;
    const rows = <usize>load<i32>(d), n = load<i32>(d, 4), conv = <usize>load<i32>(d, 8);
    let c = c0;
    if (K == 4 && n >= ROWS_OUTER) {
      if (!transposed) transpose_taps(wt, w, C, c0, c1 & ~3);
      transposed = true;
      c = conv_rows(out, x, wt, C, rows, n, conv, c0, c1 & ~3);
    } else if (K == 4) {
      // the sliding window of each 4-channel block lives in registers: three past inputs, four taps
      for (; c + 4 <= c1; c += 4) {
        const wc = w + ((<usize>c * 4) << 2);
        const r0 = v128.load(wc), r1 = v128.load(wc, 16), r2 = v128.load(wc, 32), r3 = v128.load(wc, 48);
        // transpose [channel][tap] -> [tap][channel]
        const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
        const w0 = v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), w1 = v128.shuffle<f32>(t0, t1, 2, 3, 6, 7);
        const w2 = v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), w3 = v128.shuffle<f32>(t2, t3, 2, 3, 6, 7);
        const cc = conv + (<usize>c << 2);
        let s0 = v128.load(cc), s1 = v128.load(cc + rowB), s2 = v128.load(cc + 2 * rowB);
        for (let r = 0; r < n; r++) {
          const o = <usize>load<i32>(rows + (<usize>r << 2)) * rowB + (<usize>c << 2);
          const xr = v128.load(x + o);
          let acc = f32x4.mul(w0, s0);
          acc = madd(w1, s1, acc);
          acc = madd(w2, s2, acc);
          acc = madd(w3, xr, acc);
          v128.store(out + o, silu4(acc));
          s0 = s1;
          s1 = s2;
          s2 = xr;
        }
        v128.store(cc, s0);
        v128.store(cc + rowB, s1);
        v128.store(cc + 2 * rowB, s2);
      }
    }
    for (; c < c1; c++) conv_channel(out, x, w, C, K, rows, n, conv, c);
  }
}

// From this many rows a sequence is run row by row over this part's channels (contiguous memory;
// channel blocks over all rows touch a page per row), with the taps transposed once per call.
// Both loops sum a channel's taps in the same order: the results are the same bits.
const ROWS_OUTER = 8;

/** wt[i][c] = w[c][i] (K = 4) for channels c0 .. c1 (this part's; parts write disjoint columns). */
function transpose_taps(wt: usize, w: usize, C: i32, c0: i32, c1: i32): void {
  const rowB = <usize>C << 2;
  for (let c = c0; c < c1; c++) {
    for (let i = 0; i < 4; i++) store<f32>(wt + <usize>i * rowB + (<usize>c << 2), load<f32>(w + ((<usize>c * 4 + i) << 2)));
  }
}

/** Rows in order, channel blocks c0 .. c1 (K = 4, n >= 3), then the new conv state; returns c1. */
function conv_rows(out: usize, x: usize, wt: usize, C: i32, rows: usize, n: i32, conv: usize, c0: i32, c1: i32): i32 {
  const rowB = <usize>C << 2;
  for (let r = 0; r < n; r++) {
    // the rows of xpad that row r reads: r, r+1, r+2 (the state's rows first), then its own
    const p0 = r < 3 ? conv + <usize>r * rowB : x + <usize>load<i32>(rows + (<usize>(r - 3) << 2)) * rowB;
    const p1 = r + 1 < 3 ? conv + <usize>(r + 1) * rowB : x + <usize>load<i32>(rows + (<usize>(r - 2) << 2)) * rowB;
    const p2 = r + 2 < 3 ? conv + <usize>(r + 2) * rowB : x + <usize>load<i32>(rows + (<usize>(r - 1) << 2)) * rowB;
    const o = <usize>load<i32>(rows + (<usize>r << 2)) * rowB;
    for (let c = c0; c < c1; c += 4) {
      const k = <usize>c << 2;
      let acc = f32x4.mul(v128.load(wt + k), v128.load(p0 + k));
      acc = madd(v128.load(wt + rowB + k), v128.load(p1 + k), acc);
      acc = madd(v128.load(wt + 2 * rowB + k), v128.load(p2 + k), acc);
      acc = madd(v128.load(wt + 3 * rowB + k), v128.load(x + o + k), acc);
      v128.store(out + o + k, silu4(acc));
    }
  }
  for (let j = 0; j < 3; j++) {
    const src = x + <usize>load<i32>(rows + (<usize>(n - 3 + j) << 2)) * rowB + (<usize>c0 << 2);
    memory.copy(conv + <usize>j * rowB + (<usize>c0 << 2), src, <usize>(c1 - c0) << 2);
  }
  return c1;
}

/** One channel of ssm_conv, any K (the tail channels, and kernel sizes other than 4). */
function conv_channel(out: usize, x: usize, w: usize, C: i32, K: i32, rows: usize, n: i32, conv: usize, c: i32): void {
  const cb = <usize>c << 2, rowB = <usize>C << 2, wc = w + ((<usize>c * K) << 2);
  for (let r = 0; r < n; r++) {
    let s: f32 = 0;
    for (let i = 0; i < K; i++) s += load<f32>(wc + (<usize>i << 2)) * xpad(x, rows, conv, rowB, K, r + i, cb);
    const e = f32x4.extract_lane(exp4(f32x4.splat(-s)), 0);
    store<f32>(out + <usize>load<i32>(rows + (<usize>r << 2)) * rowB + cb, s / (1 + e));
  }
  // the new state: xpad rows n .. n+K-2; in increasing order each read is at or after its write
  for (let j = 0; j < K - 1; j++) store<f32>(conv + <usize>j * rowB + cb, xpad(x, rows, conv, rowB, K, n + j, cb));
}

/** Row j of [conv state; this sequence's rows], channel byte offset cb. */
@inline function xpad(x: usize, rows: usize, conv: usize, rowB: usize, K: i32, j: i32, cb: usize): f32 {
  return j < K - 1 ? load<f32>(conv + <usize>j * rowB + cb) : load<f32>(x + <usize>load<i32>(rows + (<usize>(j - K + 1) << 2)) * rowB + cb);
}
