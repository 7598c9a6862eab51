// Backward ops for LoRA training besides the products (grad.ts): SwiGLU's and causal attention's.
//
// Attention (Backend.attentionBack): per sequence and key/value
// head (one part owns an item, so dk and dv rows have one writer and the bits do not depend on the
// thread count), every query row of every query head of the group recomputes its probabilities
// p = softmax(q k^T * scale) and adds its share: dv_j += p_j dout; ds_j = p_j (dout.v_j - dout.out)
// * scale; dq = sum_j ds_j k_j; dk_j += ds_j q. Head dims a multiple of 4 (wasm.ts checks).
import { dot_f32, madd, split } from './common';
import { exp4 } from './ops';

/** Floats of scratch one part needs for sequences of at most maxLen rows. */
export function attn_back_scratch_floats(maxLen: i32, Dh: i32): i32 {
  return ((maxLen + 3) & ~3) + Dh;
}

/**
 * desc (i32): dq, dk, dv, dout, q, k, v, out (pointers), nseq, Hq, Hkv, Dh, sstride (bytes), then
 * nseq sequence lengths. scratch + part*sstride: attn_back_scratch_floats.
 */
export function attention_back(part: i32, parts: i32, desc: usize, scale: f32, scratch: usize): void {
  const dq = <usize>load<i32>(desc), dk = <usize>load<i32>(desc, 4), dv = <usize>load<i32>(desc, 8), dout = <usize>load<i32>(desc, 12);
  const q = <usize>load<i32>(desc, 16), k = <usize>load<i32>(desc, 20), v = <usize>load<i32>(desc, 24), out = <usize>load<i32>(desc, 28);
  const nseq = load<i32>(desc, 32), Hq = load<i32>(desc, 36), Hkv = load<i32>(desc, 40), Dh = load<i32>(desc, 44), sstride = load<i32>(desc, 48);
  const lens = desc + 52;
  scratch += <usize>part * sstride;
  const group = Hq / Hkv, qW = <usize>(Hq * Dh) << 2, kW = <usize>(Hkv * Dh) << 2, hb = <usize>Dh << 2;
  let s0 = 0;
  for (let s = 0; s < nseq; s++) {
    const len = load<i32>(lens + (<usize>s << 2));
    for (let kh = 0; kh < Hkv; kh++) {
      if ((s * Hkv + kh) % parts != part) continue;
      const kb = k + <usize>s0 * kW + <usize>kh * hb, vb = v + <usize>s0 * kW + <usize>kh * hb;
      const dkb = dk + <usize>s0 * kW + <usize>kh * hb, dvb = dv + <usize>s0 * kW + <usize>kh * hb;
      for (let j = 0; j < len; j++) {
        memory.fill(dkb + <usize>j * kW, 0, hb);
        memory.fill(dvb + <usize>j * kW, 0, hb);
      }
      for (let i = 0; i < len; i++) {
        for (let h = kh * group; h < (kh + 1) * group; h++) {
          const o = <usize>(s0 + i) * qW + <usize>h * hb;
          back_row(scratch, q + o, dout + o, out + o, dq + o, kb, vb, dkb, dvb, kW, i + 1, Dh, scale);
        }
      }
    }
    s0 += len;
  }
}

/** One query row and head over n key rows (kb, vb; row stride kW): p in scratch, dq written, dk and dv rows added to. */
@inline function back_row(p: usize, qv: usize, g: usize, ov: usize, dqv: usize, kb: usize, vb: usize, dkb: usize, dvb: usize, kW: usize, n: i32, Dh: i32, scale: f32): void {
  let mx: f32 = -Infinity;
  for (let j = 0; j < n; j++) {
    const x = dot_f32(qv, kb + <usize>j * kW, Dh) * scale;
    store<f32>(p + (<usize>j << 2), x);
    mx = max(mx, x);
  }
  let j = 0, sum = f32x4.splat(0);
  const mv = f32x4.splat(mx);
  for (; j + 4 <= n; j += 4) {
    const e = exp4(f32x4.sub(v128.load(p + (<usize>j << 2)), mv));
    v128.store(p + (<usize>j << 2), e);
    sum = f32x4.add(sum, e);
  }
  let z = f32x4.extract_lane(sum, 0) + f32x4.extract_lane(sum, 1) + f32x4.extract_lane(sum, 2) + f32x4.extract_lane(sum, 3);
  for (; j < n; j++) {
    const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(p + (<usize>j << 2)) - mx)), 0);
    store<f32>(p + (<usize>j << 2), e);
    z += e;
  }
  const inv: f32 = 1 / z, D = dot_f32(g, ov, Dh);
  const dqs = p + (<usize>((n + 3) & ~3) << 2); // dq accumulator [Dh]
  memory.fill(dqs, 0, <usize>Dh << 2);
  for (j = 0; j < n; j++) {
    const pj = load<f32>(p + (<usize>j << 2)) * inv;
    const kr = kb + <usize>j * kW, vr = vb + <usize>j * kW, dkr = dkb + <usize>j * kW, dvr = dvb + <usize>j * kW;
    const ds = f32x4.splat(pj * (dot_f32(g, vr, Dh) - D) * scale), pv = f32x4.splat(pj);
    for (let d = 0; d < Dh; d += 4) {
      const b = <usize>d << 2, gd = v128.load(g + b);
      v128.store(dvr + b, madd(pv, gd, v128.load(dvr + b)));
      v128.store(dqs + b, madd(ds, v128.load(kr + b), v128.load(dqs + b)));
      v128.store(dkr + b, madd(ds, v128.load(qv + b), v128.load(dkr + b)));
    }
  }
  memory.copy(dqv, dqs, <usize>Dh << 2);
}

/** The gradients of out = silu(g) * u over this part of n floats: dg = dout u sigmoid(g) (1 + g (1 -
 * sigmoid(g))), du = dout silu(g); dg, du may alias g, u (each element read before it is written). */
export function silu_mul_back(part: i32, parts: i32, dg: usize, du: usize, dout: usize, gate: usize, up: usize, n: i32): void {
  const i0 = split(n, part, parts, 16), i1 = split(n, part + 1, parts, 16);
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const b = <usize>i << 2, g = v128.load(gate + b), u = v128.load(up + b), d = v128.load(dout + b);
    const sg = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(g))));
    v128.store(dg + b, f32x4.mul(f32x4.mul(d, u), f32x4.mul(sg, f32x4.add(one, f32x4.mul(g, f32x4.sub(one, sg))))));
    v128.store(du + b, f32x4.mul(d, f32x4.mul(g, sg)));
  }
  for (; i < i1; i++) {
    const b = <usize>i << 2, g = load<f32>(gate + b), u = load<f32>(up + b), d = load<f32>(dout + b);
    const sg: f32 = 1 / (1 + f32x4.extract_lane(exp4(f32x4.splat(-g)), 0)); // exp4, as the vector lanes
    store<f32>(dg + b, d * u * (sg * (1 + g * (1 - sg))));
    store<f32>(du + b, d * (g * sg));
  }
}
