// Q8_0 weights times activations quantised to 8-bit blocks, as ggml does on the CPU: every 32
// activations share one f32 scale d = amax/127 and are rounded to nearest-even integers.
// The int8 dot products use relaxed SIMD where the engine has it (one VNNI-class instruction
// per 16 products); the plain-SIMD build widens to i16 and uses i32x4.dot_i16x8_s.
//
// Quantised activation row layout (2*K bytes per token):
//   relaxed: K bytes |q| (0..127, the i7 operand), then K bytes sign masks (0xff where q < 0)
//   plain:   K int16 q
// The relaxed dot needs one operand in 0..127, so the sign of x moves onto the weights:
// w*x = (w * sign(x)) * |x|, and w * sign(x) = (w ^ m) - m with m the sign mask.
import { f16, hsum, split } from './common';

/** x [T, K] f32 -> xq [T, 2K] bytes, xd [T, K/32] f32 scales. K % 32 == 0. */
export function quant_q8(x: usize, T: i32, K: i32, xq: usize, xd: usize): void {
  const nb = K >> 5;
  const zero = i32x4.splat(0);
  for (let t = 0; t < T; t++) {
    const xr = x + ((<usize>t * K) << 2);
    const qr = xq + <usize>t * 2 * K;
    for (let b = 0; b < nb; b++) {
      const p = xr + (<usize>b << 7);
      let m = f32x4.splat(0);
      for (let i = 0; i < 8; i++) m = f32x4.max(m, f32x4.abs(v128.load(p + (<usize>i << 4))));
      m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
      const amax = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
      const d: f32 = amax / 127;
      const id: f32 = d != 0 ? <f32>1 / d : 0;
      store<f32>(xd + ((<usize>t * nb + b) << 2), d);
      const vid = f32x4.splat(id);
      for (let h = 0; h < 2; h++) {
        const ph = p + (<usize>h << 6);
        const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ph), vid)));
        const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ph, 16), vid)));
        const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ph, 32), vid)));
        const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ph, 48), vid)));
        const s0 = i16x8.narrow_i32x4_s(i0, i1), s1 = i16x8.narrow_i32x4_s(i2, i3);
        const o = (<usize>b << 5) + (<usize>h << 4);
        if (ASC_FEATURE_RELAXED_SIMD) {
          const q = i8x16.narrow_i16x8_s(s0, s1);
          v128.store(qr + o, i8x16.abs(q));
          v128.store(qr + <usize>K + o, i8x16.lt_s(q, zero));
        } else {
          v128.store(qr + (o << 1), s0);
          v128.store(qr + (o << 1), s1, 16);
        }
      }
    }
  }
}

/** Integer dot of one 32-weight block at `w` with activation block `a` (offset o in the row). */
@inline function bdot(w: usize, a: usize, K: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const m0 = v128.load(a + <usize>K), m1 = v128.load(a + <usize>K, 16);
    const s0 = i8x16.sub(v128.xor(v128.load(w), m0), m0);
    const s1 = i8x16.sub(v128.xor(v128.load(w, 16), m1), m1);
    // i16x8.relaxed_dot (pmaddubsw) then a pairwise widening add: V8 11.3 (Node 20) computes
    // i32x4.relaxed_dot_i8x16_i7x16_add_s wrongly (doubles the dot, drops the addend).
    const p0 = i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(s0, v128.load(a)));
    return i32x4.add(p0, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(s1, v128.load(a, 16))));
  } else {
    const w0 = v128.load(w), w1 = v128.load(w, 16);
    let acc = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), v128.load(a));
    acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), v128.load(a, 16)));
    acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), v128.load(a, 32)));
    return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), v128.load(a, 48)));
  }
}

/** A block's f16 scale (table lookup; exact, subnormals included). */
@inline function wscale(p: usize): f32 {
  return f16(p);
}


/** Byte offset of activation block b within a quantised row. */
@inline function aoff(b: i32): usize {
  if (ASC_FEATURE_RELAXED_SIMD) return <usize>b << 5;
  return <usize>b << 6;
}

@inline function fma_block(acc: v128, idot: v128, scale: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(idot), f32x4.splat(scale)));
}

/**
 * out[t, n] = sum_k x[t, k] w[n, k] for rows n of this part; w Q8_0 [N, K], x quantised by quant_q8.
 * One token: eight rows at a time share the activation loads (see below). A few tokens: each
 * row stays in L1 while the tokens pass it.
 */
export function mm_q8_0(part: i32, parts: i32, out: usize, w: usize, xq: usize, xd: usize, T: i32, N: i32, K: i32): void {
  const nb = K >> 5;
  const rowBytes = <usize>nb * 34;
  const n0 = split(N, part, parts, 4), n1 = split(N, part + 1, parts, 4);
  const xstride = <usize>2 * K;
  if (T == 1) {
    let n = n0;
    // Decode is bound by how fast the weights arrive. Eight rows q apart are read together:
    // eight separate sequential streams keep the hardware prefetchers busy (measured on the
    // 0.5B model, 2 threads: 2 adjacent rows 49 ms/token, 2 streams 47, 4 streams 34, 8 streams
    // 29; 12 or 16 spill registers; touching lines ahead by loads no longer helps at 8; handing
    // out 64-row chunks through an atomic counter, to balance the threads, was slower: 30.5).
    const q = (n1 - n0) / 8;
    for (; n < n0 + q; n++) {
      const w0 = w + <usize>n * rowBytes;
      const w1 = w0 + <usize>q * rowBytes;
      const w2 = w1 + <usize>q * rowBytes;
      const w3 = w2 + <usize>q * rowBytes;
      const w4 = w3 + <usize>q * rowBytes;
      const w5 = w4 + <usize>q * rowBytes;
      const w6 = w5 + <usize>q * rowBytes;
      const w7 = w6 + <usize>q * rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const a = xq + aoff(b), bo = <usize>b * 34;
        const dx = load<f32>(xd + (<usize>b << 2));
        a0 = fma_block(a0, bdot(w0 + bo + 2, a, K), wscale(w0 + bo) * dx);
        a1 = fma_block(a1, bdot(w1 + bo + 2, a, K), wscale(w1 + bo) * dx);
        a2 = fma_block(a2, bdot(w2 + bo + 2, a, K), wscale(w2 + bo) * dx);
        a3 = fma_block(a3, bdot(w3 + bo + 2, a, K), wscale(w3 + bo) * dx);
        a4 = fma_block(a4, bdot(w4 + bo + 2, a, K), wscale(w4 + bo) * dx);
        a5 = fma_block(a5, bdot(w5 + bo + 2, a, K), wscale(w5 + bo) * dx);
        a6 = fma_block(a6, bdot(w6 + bo + 2, a, K), wscale(w6 + bo) * dx);
        a7 = fma_block(a7, bdot(w7 + bo + 2, a, K), wscale(w7 + bo) * dx);
      }
      store<f32>(out + (<usize>(n + 0 * q) << 2), hsum(a0));
      store<f32>(out + (<usize>(n + 1 * q) << 2), hsum(a1));
      store<f32>(out + (<usize>(n + 2 * q) << 2), hsum(a2));
      store<f32>(out + (<usize>(n + 3 * q) << 2), hsum(a3));
      store<f32>(out + (<usize>(n + 4 * q) << 2), hsum(a4));
      store<f32>(out + (<usize>(n + 5 * q) << 2), hsum(a5));
      store<f32>(out + (<usize>(n + 6 * q) << 2), hsum(a6));
      store<f32>(out + (<usize>(n + 7 * q) << 2), hsum(a7));
    }
    n += 7 * q;
    for (; n < n1; n++) {
      const w0 = w + <usize>n * rowBytes;
      let a0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const bo = <usize>b * 34;
        a0 = fma_block(a0, bdot(w0 + bo + 2, xq + aoff(b), K), wscale(w0 + bo) * load<f32>(xd + (<usize>b << 2)));
      }
      store<f32>(out + (<usize>n << 2), hsum(a0));
    }
    return;
  }
  // a few tokens (more take the f32 path in wasm.ts): one row at a time, every token
  for (let n = n0; n < n1; n++) {
    const wr = w + <usize>n * rowBytes;
    for (let t = 0; t < T; t++) {
      const x0 = xq + <usize>t * xstride, d0 = xd + ((<usize>t * nb) << 2);
      let a0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const bo = <usize>b * 34;
        a0 = fma_block(a0, bdot(wr + bo + 2, x0 + aoff(b), K), wscale(wr + bo) * load<f32>(d0 + (<usize>b << 2)));
      }
      store<f32>(out + ((<usize>t * N + n) << 2), hsum(a0));
    }
  }
}
