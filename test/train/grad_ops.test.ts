// The backward ops (Backend.matmulT with and without accumulate, matmulTN, rmsNormBack, siluMulBack, attentionBack):
// - the WebAssembly products against the reference backend on every stored weight type, odd
//   sizes (ragged row and column tails, partial column chunks), 1 and 3 threads: |d| <= 1e-5 * S
//   + 1e-6, S = sum over n of |dy[t,n] w[n,k]| (weights decoded exactly, f32 sums); the same bits
//   for every thread count (each output column is summed by one part, in one order);
// - the reference backward ops against central finite differences of the forward ops (in f64 via
//   a tiny copy of each forward), relative error <= 1e-6.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import type { Weight } from '../../src/backend/backend.js';
import { DTYPES, type DType } from '../../src/formats/dtype.js';
import { dequantize, quantize } from '../../src/formats/quant/index.js';
import { relErr, rng, sameBits } from '../helpers.js';

const rnd = rng(2024);
const fill = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale);
const ref = new ReferenceBackend();
const wasm = [new WasmBackend({ threads: 1 }), new WasmBackend({ threads: 3, grain: 1e-9, poison: true })];
after(() => wasm.forEach((b) => b.dispose()));

function weightOn(be: ReferenceBackend | WasmBackend, dtype: DType, bytes: Uint8Array, shape: [number, number]): Weight {
  const w = be.weight(dtype, shape);
  w.bytes.set(bytes);
  return w;
}

function onWasm(be: WasmBackend, a: Float32Array): Float32Array {
  const b = be.alloc(a.length);
  b.set(a);
  return b;
}

for (const dtype of Object.keys(DTYPES) as DType[]) {
  test(`matmulT: WebAssembly = reference on ${dtype}`, () => {
    const block = DTYPES[dtype].blockSize;
    const K = block === 1 ? 83 : block === 32 ? 96 : 512,
      N = 70,
      T = 7;
    const src = fill(N * K, 0.5);
    const bytes = dtype === 'F32' ? new Uint8Array(src.buffer) : quantize(dtype, src, N * K);
    const wf = new Float32Array(N * K);
    dequantize(dtype, bytes, 0, wf, 0, N * K);
    const dy = fill(T * N);
    const want = new Float32Array(T * K);
    ref.matmulT(want, dy, weightOn(ref, dtype, bytes, [N, K]), T);
    let first: Float32Array | undefined;
    for (const be of wasm) {
      const out = be.alloc(T * K);
      be.matmulT(out, onWasm(be, dy), weightOn(be, dtype, bytes, [N, K]), T);
      for (let t = 0; t < T; t++)
        for (let k = 0; k < K; k++) {
          let S = 0;
          for (let n = 0; n < N; n++) S += Math.abs(dy[t * N + n]! * wf[n * K + k]!);
          const d = Math.abs(out[t * K + k]! - want[t * K + k]!);
          assert.ok(d <= 1e-5 * S + 1e-6, `${be.name} ${dtype} (${t}, ${k}): ${out[t * K + k]} vs ${want[t * K + k]}`);
        }
      if (first) sameBits(out.slice(), first, `${dtype}: threads`);
      first = out.slice();
      // accumulate: dx += dy w (the same sums, added)
      const base = fill(T * K),
        acc = onWasm(be, base);
      be.matmulT(acc, onWasm(be, dy), weightOn(be, dtype, bytes, [N, K]), T, true);
      for (let i = 0; i < T * K; i++) assert.ok(Math.abs(acc[i]! - (base[i]! + out[i]!)) <= 1e-6 * (1 + Math.abs(base[i]!)), `${be.name} ${dtype} accumulate ${i}`);
    }
    const racc = fill(T * K),
      rbase = racc.slice();
    ref.matmulT(racc, dy, weightOn(ref, dtype, bytes, [N, K]), T, true);
    for (let i = 0; i < T * K; i++) assert.ok(Math.abs(racc[i]! - (rbase[i]! + want[i]!)) <= 1e-6 * (1 + Math.abs(rbase[i]!)), `reference ${dtype} accumulate ${i}`);
  });
}

test('matmulTN: WebAssembly = reference (weight gradients a^T b)', () => {
  for (const [T, N, K] of [
    [9, 4, 70],
    [33, 5, 3],
    [1, 16, 200],
  ] as const) {
    const a = fill(T * N),
      b = fill(T * K);
    const want = new Float32Array(N * K);
    ref.matmulTN(want, a, b, T, N, K);
    for (const be of wasm) {
      const out = be.alloc(N * K);
      be.matmulTN(out, onWasm(be, a), onWasm(be, b), T, N, K);
      for (let i = 0; i < N * K; i++) assert.ok(Math.abs(out[i]! - want[i]!) <= 1e-5 * T + 1e-6, `${be.name} [${T},${N},${K}] ${i}: ${out[i]} vs ${want[i]}`);
    }
  }
});

/** Central differences of sum(r * f(x)) w.r.t. x, in f64. */
function numGrad(f: (x: Float64Array) => Float64Array, x: Float64Array, r: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const dot = (y: Float64Array) => y.reduce((s, v, i) => s + v * r[i]!, 0);
  for (let i = 0; i < x.length; i++) {
    const xp = Float64Array.from(x),
      xm = Float64Array.from(x);
    xp[i]! += h;
    xm[i]! -= h;
    g[i] = (dot(f(xp)) - dot(f(xm))) / (2 * h);
  }
  return g;
}

// the reference ops compute in f64 from f32 inputs: give them f32-exact values and compare in f64
const f32 = (n: number, scale = 1) => Float64Array.from(fill(n, scale));

test('rmsNormBack = finite differences of rmsNorm', () => {
  const R = 3,
    D = 12,
    eps = 1e-6;
  const x = f32(R * D),
    w = f32(D),
    r = f32(R * D);
  const fwd = (xx: Float64Array) => {
    const y = new Float64Array(R * D);
    for (let i = 0; i < R; i++) {
      let ss = 0;
      for (let j = 0; j < D; j++) ss += xx[i * D + j]! ** 2;
      const inv = 1 / Math.sqrt(ss / D + eps);
      for (let j = 0; j < D; j++) y[i * D + j] = xx[i * D + j]! * inv * w[j]!;
    }
    return y;
  };
  const dx = new Float32Array(R * D);
  ref.rmsNormBack(dx, Float32Array.from(r), Float32Array.from(x), Float32Array.from(w), R, D, eps);
  assert.ok(relErr(dx, numGrad(fwd, x, r)) <= 1e-6);
});

test('siluMulBack = finite differences of siluMul', () => {
  const n = 20,
    g = f32(n, 4),
    u = f32(n),
    r = f32(n);
  const dg = new Float32Array(n),
    du = new Float32Array(n);
  ref.siluMulBack(dg, du, Float32Array.from(r), Float32Array.from(g), Float32Array.from(u), n);
  const silu = (v: number) => v / (1 + Math.exp(-v));
  assert.ok(
    relErr(
      dg,
      numGrad((gg) => gg.map((v, i) => silu(v) * u[i]!), g, r),
    ) <= 1e-6,
  );
  assert.ok(
    relErr(
      du,
      numGrad((uu) => uu.map((v, i) => silu(g[i]!) * v), u, r),
    ) <= 1e-6,
  );
});

test('attentionBack = finite differences of causal grouped-query attention, two sequences', () => {
  const lens = Int32Array.of(4, 3),
    T = 7,
    Hq = 4,
    Hkv = 2,
    Dh = 3,
    scale = 0.7;
  const q = f32(T * Hq * Dh),
    k = f32(T * Hkv * Dh),
    v = f32(T * Hkv * Dh),
    r = f32(T * Hq * Dh);
  const fwd = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => {
    const out = new Float64Array(T * Hq * Dh);
    let s0 = 0;
    for (const len of lens) {
      for (let i = 0; i < len; i++)
        for (let h = 0; h < Hq; h++) {
          const kh = Math.floor(h / (Hq / Hkv)),
            t = s0 + i;
          const s = Array.from({ length: i + 1 }, (_, j) => {
            let d = 0;
            for (let c = 0; c < Dh; c++) d += qq[(t * Hq + h) * Dh + c]! * kk[((s0 + j) * Hkv + kh) * Dh + c]!;
            return d * scale;
          });
          const m = Math.max(...s),
            e = s.map((x) => Math.exp(x - m)),
            z = e.reduce((a, b) => a + b, 0);
          for (let c = 0; c < Dh; c++) out[(t * Hq + h) * Dh + c] = e.reduce((a, p, j) => a + (p / z) * vv[((s0 + j) * Hkv + kh) * Dh + c]!, 0);
        }
      s0 += len;
    }
    return out;
  };
  const out = Float32Array.from(fwd(q, k, v));
  const dq = new Float32Array(q.length),
    dk = new Float32Array(k.length),
    dv = new Float32Array(v.length);
  const F = (a: Float64Array) => Float32Array.from(a);
  ref.attentionBack(dq, dk, dv, F(r), F(q), F(k), F(v), out, lens, Hq, Hkv, Dh, scale);
  assert.ok(
    relErr(
      dq,
      numGrad((x) => fwd(x, k, v), q, r),
    ) <= 1e-6,
    'dq',
  );
  assert.ok(
    relErr(
      dk,
      numGrad((x) => fwd(q, x, v), k, r),
    ) <= 1e-6,
    'dk',
  );
  assert.ok(
    relErr(
      dv,
      numGrad((x) => fwd(q, k, x), v, r),
    ) <= 1e-6,
    'dv',
  );
});

test('attentionBack and siluMulBack: WebAssembly = reference, the same bits for every thread count', () => {
  for (const [lens, Hq, Hkv, Dh] of [
    [[5, 1, 12], 4, 2, 8],
    [[70], 2, 1, 64],
    [[3, 4], 3, 3, 6], // head dim not a multiple of 4: the reference loops
  ] as const) {
    const T = lens.reduce((a, b) => a + b, 0),
      L = Int32Array.from(lens);
    const [q, out, dout] = [0, 1, 2].map(() => fill(T * Hq * Dh));
    const [k, v] = [0, 1].map(() => fill(T * Hkv * Dh));
    const want = [new Float32Array(T * Hq * Dh), new Float32Array(T * Hkv * Dh), new Float32Array(T * Hkv * Dh)] as const;
    ref.attentionBack(...want, dout!, q!, k!, v!, out!, L, Hq, Hkv, Dh, 0.3);
    let first: Float32Array[] | undefined;
    for (const be of wasm) {
      const got = [be.alloc(T * Hq * Dh), be.alloc(T * Hkv * Dh), be.alloc(T * Hkv * Dh)] as const;
      const w = (a: Float32Array) => onWasm(be, a);
      be.attentionBack(...got, w(dout!), w(q!), w(k!), w(v!), w(out!), L, Hq, Hkv, Dh, 0.3);
      got.forEach((g, i) => assert.ok(relErr(g, want[i]!) <= 1e-5, `${be.name} [${lens}] ${Hq}/${Hkv}x${Dh}: gradient ${i}: ${relErr(g, want[i]!)}`));
      if (first) got.forEach((g, i) => sameBits(g.slice(), first![i]!, `attentionBack threads, gradient ${i}`));
      first = got.map((g) => g.slice());
    }
  }
  const n = 37,
    g = fill(n, 6),
    u = fill(n),
    d = fill(n);
  const dg = new Float32Array(n),
    du = new Float32Array(n);
  ref.siluMulBack(dg, du, d, g, u, n);
  for (const be of wasm) {
    const bg = onWasm(be, g),
      bu = onWasm(be, u);
    be.siluMulBack(bg, bu, onWasm(be, d), bg, bu, n); // in place, as the trainer calls it
    assert.ok(relErr(bg, dg) <= 1e-6 && relErr(bu, du) <= 1e-6, `${be.name}: siluMulBack`);
  }
});
