// Row-wise and elementwise ops: RMSNorm, RoPE, SiLU-gate, adds, and attention over the KV cache
// with an online softmax (blocks of scores, running max and sum), so no T x T buffer is needed.
import { dot4, dot_f32, hsum, madd, split } from './common';
import { KV_F32, kv_decode, kv_head_bytes, kv_row_bytes } from './kv';

/** e^x for four lanes: range reduction to |r| <= ln2/2, degree-6 polynomial, ~2 ulp. */
@inline export function exp4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.3)), f32x4.splat(88.7));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504089)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.0 / 720);
  p = madd(p, r, f32x4.splat(1.0 / 120));
  p = madd(p, r, f32x4.splat(1.0 / 24));
  p = madd(p, r, f32x4.splat(1.0 / 6));
  p = madd(p, r, f32x4.splat(0.5));
  p = madd(p, r, f32x4.splat(1));
  p = madd(p, r, f32x4.splat(1));
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, e);
}

export function rms_norm(out: usize, x: usize, w: usize, R: i32, D: i32, eps: f32): void {
  for (let r = 0; r < R; r++) {
    const xr = x + ((<usize>r * D) << 2), o = out + ((<usize>r * D) << 2);
    const ss = <f64>dot_f32(xr, xr, D);
    const inv = <f32>(1 / Math.sqrt(ss / D + eps));
    const vi = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const k = <usize>i << 2;
      v128.store(o + k, f32x4.mul(f32x4.mul(v128.load(xr + k), vi), v128.load(w + k)));
    }
    for (; i < D; i++) store<f32>(o + (<usize>i << 2), load<f32>(xr + (<usize>i << 2)) * inv * load<f32>(w + (<usize>i << 2)));
  }
}

/** cos and sin of every rotary angle of T positions for nRot rotated dims, times mscale: tab +
 *  t*nRot floats, half cos, then half sin; pair i turns by inv[i] (f64) radians per position. */
export function rope_table(positions: usize, T: i32, nRot: i32, inv: usize, mscale: f64, tab: usize): void {
  const half = nRot >> 1;
  for (let t = 0; t < T; t++) {
    const p = <f64>load<i32>(positions + (<usize>t << 2));
    const cs = tab + ((<usize>t * nRot) << 2), sn = cs + (<usize>half << 2);
    for (let i = 0; i < half; i++) {
      const a = p * load<f64>(inv + (<usize>i << 3));
      store<f32>(cs + (<usize>i << 2), <f32>(Math.cos(a) * mscale));
      store<f32>(sn + (<usize>i << 2), <f32>(Math.sin(a) * mscale));
    }
  }
}

/** NEOX rotary embedding in place, x [T, H*Dh], with rope_table's angles for the T positions: the
 *  first nRot dims of each head rotate (dim i with i + nRot/2), the rest are left as they are. */
export function rope(x: usize, T: i32, H: i32, Dh: i32, nRot: i32, tab: usize): void {
  const half = nRot >> 1;
  for (let t = 0; t < T; t++) {
    const cs = tab + ((<usize>t * nRot) << 2), sn = cs + (<usize>half << 2);
    for (let h = 0; h < H; h++) {
      const b = x + ((<usize>(t * H + h) * Dh) << 2), b2 = b + (<usize>half << 2);
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const k = <usize>i << 2;
        const u = v128.load(b + k), v = v128.load(b2 + k), c = v128.load(cs + k), s = v128.load(sn + k);
        v128.store(b + k, f32x4.sub(f32x4.mul(u, c), f32x4.mul(v, s)));
        v128.store(b2 + k, f32x4.add(f32x4.mul(v, c), f32x4.mul(u, s)));
      }
      for (; i < half; i++) {
        const k = <usize>i << 2;
        const u = load<f32>(b + k), v = load<f32>(b2 + k), c = load<f32>(cs + k), s = load<f32>(sn + k);
        store<f32>(b + k, u * c - v * s);
        store<f32>(b2 + k, v * c + u * s);
      }
    }
  }
}

/** out = silu(gate) * up over this part of n floats. */
export function silu_mul(part: i32, parts: i32, out: usize, gate: usize, up: usize, n: i32): void {
  const i0 = split(n, part, parts, 16), i1 = split(n, part + 1, parts, 16);
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const k = <usize>i << 2, g = v128.load(gate + k);
    const s = f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g))));
    v128.store(out + k, f32x4.mul(s, v128.load(up + k)));
  }
  for (; i < i1; i++) {
    const k = <usize>i << 2, g = load<f32>(gate + k);
    // exp4 here too: an element's result must not depend on whether it falls in a vector or the tail
    const e = f32x4.extract_lane(exp4(f32x4.splat(-g)), 0);
    store<f32>(out + k, g / (1 + e) * load<f32>(up + k));
  }
}

export function add(part: i32, parts: i32, out: usize, a: usize, b: usize, n: i32): void {
  const i0 = split(n, part, parts, 16), i1 = split(n, part + 1, parts, 16);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const k = <usize>i << 2;
    v128.store(out + k, f32x4.add(v128.load(a + k), v128.load(b + k)));
  }
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
}

export function add_bias(x: usize, bias: usize, T: i32, N: i32): void {
  for (let t = 0; t < T; t++) add(0, 1, x + ((<usize>t * N) << 2), x + ((<usize>t * N) << 2), bias, N);
}

const BLK = 64;

/** Query rows of one sequence that share each decoded block of an f16 / Q8_0 cache (a tile; f32: 1). */
export const ATT_TILE = 8;

/** Floats of attention scratch one part needs: per query row of a tile and head of a group its
 * output accumulator (Dh), running max and sum, and one block of scores; for an f16 / Q8_0 cache
 * (kvt, kv.ts) also one block of key and value rows decoded to f32. */
export function attention_scratch_floats(group: i32, Dh: i32, kvt: i32): i32 {
  return (kvt == KV_F32 ? 1 : ATT_TILE) * group * (Dh + 2) + BLK + (kvt == KV_F32 ? 0 : 2 * BLK * Dh);
}

/**
 * Grouped-query attention. desc holds, per query row t, three i32: k pointer, v pointer, length;
 * then the tile count and per tile two i32 (first row, rows): consecutive rows reading one cache,
 * at most ATT_TILE (f32: one row each). Work items are (tile, key/value head, run of that head's
 * query heads): for each block of BLK cache rows every query head of the run, for every row of
 * the tile, takes its turn while the block is in cache, so a key/value row comes from memory
 * once per run rather than once per query head (Qwen3.5-0.8B at context 4096: 4 query heads per
 * key/value head read 4x the cache), and f16 / Q8_0 rows (kvt, kv.ts) are decoded once per run
 * and tile (a prefill's rows share the decoding). Each (row, head) takes the same steps on the
 * same values whichever tile, run or part computes it. scratch + part*sstride:
 * attention_scratch_floats floats.
 */
export function attention(part: i32, parts: i32, out: usize, q: usize, desc: usize, T: i32, Hq: i32, Hkv: i32, Dh: i32, scale: f32, scratch: usize, sstride: i32, kvt: i32): void {
  scratch += <usize>part * sstride;
  const group = Hq / Hkv, kvDim = Hkv * Dh;
  const rowB = kv_row_bytes(kvt, kvDim), headB = kv_head_bytes(kvt, Dh), plain = kvt == KV_F32;
  const nt = load<i32>(desc + <usize>T * 12), tdesc = desc + <usize>T * 12 + 4;
  // few tiles (decode): split each group into runs so that every part has work
  const runs = nt * Hkv >= parts ? 1 : min(group, (parts + nt * Hkv - 1) / (nt * Hkv));
  const per = (group + runs - 1) / runs;
  const slots = (plain ? 1 : ATT_TILE) * group; // (row of the tile, head of the run) accumulators
  const accs = scratch, ms = accs + (<usize>(slots * Dh) << 2), ls = ms + (<usize>slots << 2), sc = ls + (<usize>slots << 2);
  const tk = sc + (<usize>BLK << 2), tv = tk + (<usize>(BLK * Dh) << 2); // decoded rows (f16, Q8_0)
  // Many tiles (prefill): items dealt round-robin, as rows have unequal lengths. Few tiles
  // (decode): contiguous runs of items.
  const items = nt * Hkv * runs, few = nt < 4 * parts;
  const i0 = few ? split(items, part, parts, 1) : part, i1 = few ? split(items, part + 1, parts, 1) : items;
  for (let item = i0; item < i1; item += few ? 1 : parts) {
    const tile = item / (Hkv * runs), kh = (item / runs) % Hkv, r = item % runs;
    const h0 = kh * group + r * per, h1 = min(h0 + per, (kh + 1) * group), nh = h1 - h0;
    if (nh <= 0) continue;
    const t0 = load<i32>(tdesc + <usize>tile * 8), n = load<i32>(tdesc + <usize>tile * 8, 4);
    const d0 = desc + <usize>t0 * 12;
    const kb = <usize>load<i32>(d0) + <usize>kh * headB, vb = <usize>load<i32>(d0, 4) + <usize>kh * headB;
    let len = 0;
    for (let i = 0; i < n; i++) len = max(len, load<i32>(desc + <usize>(t0 + i) * 12, 8));
    memory.fill(accs, 0, <usize>(n * nh * Dh) << 2);
    for (let s = 0; s < n * nh; s++) {
      store<f32>(ms + (<usize>s << 2), -Infinity);
      store<f32>(ls + (<usize>s << 2), 0);
    }
    for (let j0 = 0; j0 < len; j0 += BLK) {
      let k0 = kb + <usize>j0 * rowB, v0 = vb + <usize>j0 * rowB, rb = rowB;
      if (!plain) {
        const nb = min(BLK, len - j0);
        kv_decode(kvt, tk, k0, rowB, nb, Dh);
        kv_decode(kvt, tv, v0, rowB, nb, Dh);
        k0 = tk; v0 = tv; rb = <usize>Dh << 2;
      }
      for (let i = 0; i < n; i++) {
        const t = t0 + i, nb = min(BLK, load<i32>(desc + <usize>t * 12, 8) - j0);
        if (nb <= 0) continue;
        for (let h = h0; h < h1; h++) {
          const s = i * nh + h - h0, qv = q + ((<usize>(t * Hq + h) * Dh) << 2);
          attend_block(accs + (<usize>(s * Dh) << 2), ms + (<usize>s << 2), ls + (<usize>s << 2), sc, qv, k0, v0, rb, nb, Dh, scale);
        }
      }
    }
    for (let i = 0; i < n; i++) {
      for (let h = h0; h < h1; h++) {
        const s = i * nh + h - h0, acc = accs + (<usize>(s * Dh) << 2);
        const o = out + ((<usize>((t0 + i) * Hq + h) * Dh) << 2), inv: f32 = 1 / load<f32>(ls + (<usize>s << 2));
        for (let k = 0; k < Dh; k++) store<f32>(o + (<usize>k << 2), load<f32>(acc + (<usize>k << 2)) * inv);
      }
    }
  }
}

/** One head, one block of nb cache rows (k0, v0 the block's first rows): the online-softmax step
 * on its running max *pm, sum *pl and output accumulator acc. */
@inline function attend_block(acc: usize, pm: usize, pl: usize, sc: usize, qv: usize, kb: usize, vb: usize, rowB: usize, nb: i32, Dh: i32, scale: f32): void {
  let bmax: f32 = -Infinity;
  let j = 0;
  for (; j + 4 <= nb; j += 4) {
    const k0 = kb + <usize>j * rowB;
    dot4(sc + (<usize>j << 2), qv, k0, k0 + rowB, k0 + 2 * rowB, k0 + 3 * rowB, Dh);
  }
  for (; j < nb; j++) store<f32>(sc + (<usize>j << 2), dot_f32(qv, kb + <usize>j * rowB, Dh));
  for (j = 0; j < nb; j++) {
    const s = load<f32>(sc + (<usize>j << 2)) * scale;
    store<f32>(sc + (<usize>j << 2), s);
    if (s > bmax) bmax = s;
  }
  const m = load<f32>(pm);
  const mn = max(m, bmax);
  const corr = Mathf.exp(m - mn); // 0 on the first block (m = -inf)
  const vm = f32x4.splat(mn);
  let psum = f32x4.splat(0);
  j = 0;
  for (; j + 4 <= nb; j += 4) {
    const k = <usize>j << 2;
    const p = exp4(f32x4.sub(v128.load(sc + k), vm));
    v128.store(sc + k, p);
    psum = f32x4.add(psum, p);
  }
  let ps = hsum(psum);
  for (; j < nb; j++) {
    const p = Mathf.exp(load<f32>(sc + (<usize>j << 2)) - mn);
    store<f32>(sc + (<usize>j << 2), p);
    ps += p;
  }
  store<f32>(pl, load<f32>(pl) * corr + ps);
  store<f32>(pm, mn);
  // acc = acc * corr + sum_j p_j v_j, four value rows per pass over acc
  let jj = 0;
  for (; jj + 4 <= nb; jj += 4) {
    const v0 = vb + <usize>jj * rowB, v1 = v0 + rowB, v2 = v1 + rowB, v3 = v2 + rowB;
    const pp = sc + (<usize>jj << 2);
    const p0 = f32x4.splat(load<f32>(pp)), p1 = f32x4.splat(load<f32>(pp, 4)), p2 = f32x4.splat(load<f32>(pp, 8)), p3 = f32x4.splat(load<f32>(pp, 12));
    const c = f32x4.splat(jj == 0 ? corr : 1);
    let i = 0;
    for (; i + 4 <= Dh; i += 4) {
      const k = <usize>i << 2;
      let a = f32x4.mul(v128.load(acc + k), c);
      a = madd(v128.load(v0 + k), p0, a);
      a = madd(v128.load(v1 + k), p1, a);
      a = madd(v128.load(v2 + k), p2, a);
      v128.store(acc + k, madd(v128.load(v3 + k), p3, a));
    }
    const cs: f32 = jj == 0 ? corr : 1;
    for (; i < Dh; i++) {
      const k = <usize>i << 2;
      store<f32>(acc + k, load<f32>(acc + k) * cs + load<f32>(pp) * load<f32>(v0 + k) + load<f32>(pp, 4) * load<f32>(v1 + k) + load<f32>(pp, 8) * load<f32>(v2 + k) + load<f32>(pp, 12) * load<f32>(v3 + k));
    }
  }
  if (jj == 0) for (let i = 0; i < Dh; i++) store<f32>(acc + (<usize>i << 2), load<f32>(acc + (<usize>i << 2)) * corr);
  for (; jj < nb; jj++) {
    const p = load<f32>(sc + (<usize>jj << 2)), vp = f32x4.splat(p);
    const vr = vb + <usize>jj * rowB;
    let i = 0;
    for (; i + 4 <= Dh; i += 4) {
      const k = <usize>i << 2;
      v128.store(acc + k, madd(v128.load(vr + k), vp, v128.load(acc + k)));
    }
    for (; i < Dh; i++) store<f32>(acc + (<usize>i << 2), load<f32>(acc + (<usize>i << 2)) + p * load<f32>(vr + (<usize>i << 2)));
  }
}

/** n floats from src to dst (memory.copy: TypedArray.set on a shared buffer copies element by
 * element, ~0.2 µs a float in V8, which made the KV-cache writes of a decode token cost 1.3 ms) */
export function copy_f32(dst: usize, src: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

/** 1 if any of the n halves at p is an infinity or NaN (mv_f16 does not handle those). */
export function f16_special(p: usize, n: i32): i32 {
  const e = i16x8.splat(<i16>0x7c00);
  let any = i16x8.splat(0), i = 0;
  for (; i + 8 <= n; i += 8) any = v128.or(any, i16x8.eq(v128.and(v128.load(p + (<usize>i << 1)), e), e));
  if (v128.any_true(any)) return 1;
  for (; i < n; i++) if ((load<u16>(p + (<usize>i << 1)) & 0x7c00) == 0x7c00) return 1;
  return 0;
}

/** ATT_TILE, for the JS side that builds the tiles. */
export function attention_tile(): i32 {
  return ATT_TILE;
}
