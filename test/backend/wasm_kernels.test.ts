// Every WebAssembly kernel against the reference backend, on random inputs of odd sizes (ragged
// tails, one row, more threads than rows). Tolerances, per op (the reference accumulates in f64,
// the kernels in f32; S = sum over k of |x[k] * w[k]|, the scale of a dot product's rounding):
//   F32/F16/BF16 and the other decoded types' matmul: |d| <= 1e-5 * S + 1e-6 (weights are decoded exactly)
//   Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 matmul, every T: activations are quantised to 8-bit blocks, as ggml does; against the reference
//     run on the same quantised activations |d| <= 1e-5 * S + 1e-6, and against the f32 reference
//     |d| <= sum over blocks of amax_b/254 * sum|w_b| (half a quantisation step per activation)
//   Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS matmul, every T: the same, with ggml's Q8_K activations (blocks of 256)
//   embed: exact; rmsNorm, rope, siluMul, add, addBias: 1e-5 relative (+1e-6);
//   attention: 1e-5 relative to max |v| (+1e-6).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WasmBackend } from '../../src/backend/wasm.js';
import { wasmVariants } from '../helpers.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import type { Weight } from '../../src/backend/backend.js';
import { DTYPES, type DType } from '../../src/formats/dtype.js';
import { dequantize, quantize } from '../../src/formats/quant/index.js';

let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const ref = new ReferenceBackend();
const backends = wasmVariants([1, 3]);
after(() => backends.forEach((b) => b.dispose()));

function fill(a: Float32Array, scale = 1): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = rnd() * scale;
  return a;
}

function makeWeight(be: WasmBackend, dtype: DType, N: number, K: number): { w: Weight; r: Weight; f: Float32Array } {
  const src = fill(new Float32Array(N * K), 0.5);
  const bytes = dtype === 'F32' ? new Uint8Array(src.buffer) : quantize(dtype, src, N * K);
  const w = be.weight(dtype, [N, K]);
  w.bytes.set(bytes);
  const r = ref.weight(dtype, [N, K]);
  r.bytes.set(bytes);
  const f = new Float32Array(N * K);
  dequantize(dtype, bytes, 0, f, 0, N * K);
  return { w, r, f };
}

const nearestEven = (v: number) => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** ggml's Q8_K activations (quantize_row_q8_K_ref): iscale = -127 / (the value of largest |x|),
 * q = min(127, nearest(iscale * x)), d = 1 / iscale; per 256. */
function quantizeActsK(x: Float32Array): { q: Float32Array; amax: Float32Array } {
  const q = new Float32Array(x.length),
    amax = new Float32Array(x.length / 256);
  for (let b = 0; b < x.length / 256; b++) {
    let m = 0,
      mx = 0;
    for (let j = 0; j < 256; j++)
      if (Math.abs(x[b * 256 + j]!) > m) {
        m = Math.abs(x[b * 256 + j]!);
        mx = x[b * 256 + j]!;
      }
    amax[b] = m;
    if (!m) continue;
    const is = Math.fround(-127 / mx),
      d = Math.fround(1 / is);
    for (let j = 0; j < 256; j++) q[b * 256 + j] = Math.min(127, nearestEven(Math.fround(is * x[b * 256 + j]!))) * d;
  }
  return { q, amax };
}

/** ggml-style q8 activations as the kernel makes them: d = amax/127 (f32), q = nearest-even(x / d). */
function quantizeActs(x: Float32Array): { q: Float32Array; amax: Float32Array } {
  const q = new Float32Array(x.length),
    amax = new Float32Array(x.length / 32);
  for (let b = 0; b < x.length / 32; b++) {
    let m = 0;
    for (let j = 0; j < 32; j++) m = Math.max(m, Math.abs(x[b * 32 + j]!));
    const d = Math.fround(m / 127),
      id = d ? Math.fround(1 / d) : 0;
    amax[b] = m;
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[b * 32 + j]! * id);
      let r = Math.round(v);
      if (Math.abs(v % 1) === 0.5 && r % 2 !== 0) r -= 1; // ties to even
      q[b * 32 + j] = r * d;
    }
  }
  return { q, amax };
}

const SHAPES: Record<DType, [number, number][]> = {
  F32: [
    [1, 1],
    [7, 77],
    [37, 9],
    [13, 130],
  ],
  F16: [
    [1, 3],
    [9, 77],
    [37, 8],
    [5, 1031],
  ],
  BF16: [
    [1, 5],
    [9, 77],
    [37, 16],
  ],
  // 300 rows: one part of 256+ rows takes the sixteen-stream one-token kernel, then 8-row groups, then singles
  Q8_0: [
    [1, 32],
    [7, 96],
    [37, 64],
    [11, 1024],
    [300, 64],
  ],
  Q4_0: [
    [1, 32],
    [7, 96],
    [13, 64],
    [300, 96],
  ],
  // 64-wide rows as in llama.cpp's fallbacks (test/backend/wasm_legacy.test.ts has more)
  Q4_1: [
    [1, 32],
    [7, 96],
    [13, 64],
    [300, 64],
  ],
  Q5_0: [
    [1, 32],
    [7, 96],
    [13, 64],
    [300, 64],
  ],
  Q5_1: [
    [1, 32],
    [7, 96],
    [13, 64],
    [300, 64],
  ],
  Q4_K: [
    [1, 256],
    [7, 512],
    [9, 256],
    [300, 256],
  ],
  Q6_K: [
    [1, 256],
    [7, 512],
    [9, 256],
    [300, 256],
  ],
  Q2_K: [
    [1, 256],
    [7, 512],
    [9, 256],
  ],
  Q3_K: [
    [1, 256],
    [7, 512],
    [9, 256],
    [300, 256],
  ],
  Q5_K: [
    [1, 256],
    [7, 512],
    [9, 256],
    [300, 256],
  ],
  IQ4_NL: [
    [1, 32],
    [7, 96],
    [13, 64],
    [300, 64],
  ],
  IQ4_XS: [
    [1, 256],
    [7, 512],
    [9, 256],
    [300, 256],
  ],
};

for (const be of backends) {
  for (const dtype of Object.keys(SHAPES) as DType[]) {
    test(`${be.name} matmul ${dtype}: odd shapes, T = 1, 3, 6, agree with the reference`, () => {
      for (const [N, K] of SHAPES[dtype]) {
        const { w, r, f } = makeWeight(be, dtype, N, K);
        for (const T of [1, 3, 6]) {
          const x = fill(be.alloc(T * K));
          const out = be.alloc(T * N);
          be.matmul(out, x, w, T);
          const xr = Float32Array.from(x);
          const exact = new Float32Array(T * N);
          ref.matmul(exact, xr, r, T);
          let xq: Float32Array = xr,
            amax: Float32Array = new Float32Array(0);
          const q8 = dtype === 'Q8_0' || dtype === 'Q4_0' || (be.legacyInt8 && ['Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL'].includes(dtype)); // int8 activations for every T, as ggml
          const kq = be.kquant && ['Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_XS'].includes(dtype); // Q8_K ones
          const B = kq ? 256 : 32; // activations per scale
          if (q8) ({ q: xq, amax } = quantizeActs(xr));
          if (kq) ({ q: xq, amax } = quantizeActsK(xr));
          const expected = new Float32Array(T * N);
          ref.matmul(expected, xq, r, T);
          for (let t = 0; t < T; t++) {
            for (let n = 0; n < N; n++) {
              let S = 0,
                qerr = 0;
              for (let k = 0; k < K; k++) S += Math.abs(xq[t * K + k]! * f[n * K + k]!);
              for (let b = 0; b < amax.length / T; b++) {
                let sw = 0;
                for (let j = 0; j < B; j++) sw += Math.abs(f[n * K + b * B + j]!);
                qerr += (amax[t * (K / B) + b]! / 254) * sw;
              }
              const i = t * N + n,
                got = out[i]!;
              assert.ok(Math.abs(got - expected[i]!) <= 1e-5 * S + 1e-6, `${dtype} [${N}x${K}] T=${T} t=${t} n=${n}: ${got} vs ${expected[i]}`);
              if (q8 || kq) assert.ok(Math.abs(got - exact[i]!) <= qerr * 1.0001 + 1e-5 * S + 1e-6, `${dtype} vs f32 reference at ${t},${n}`);
            }
          }
        }
      }
    });
  }

  test(`${be.name} matmul F16 with an infinity in the weights: that row is infinite, the others exact`, () => {
    const { w, r } = makeWeight(be, 'F16', 3, 21);
    for (const bytes of [w.bytes, r.bytes]) {
      bytes[2 * (21 + 5)] = 0x00;
      bytes[2 * (21 + 5) + 1] = 0x7c;
    } // +inf at (1, 5)
    const x = fill(be.alloc(21)),
      out = be.alloc(3),
      e = new Float32Array(3);
    x[5] = 0.5;
    be.matmul(out, x, w, 1);
    ref.matmul(e, Float32Array.from(x), r, 1);
    assert.equal(out[1], Infinity);
    assert.equal(e[1], Infinity);
    for (const n of [0, 2]) assert.ok(Math.abs(out[n]! - e[n]!) <= 1e-5, `row ${n}`);
  });

  test(`${be.name} embed: rows of every stored type decode exactly`, () => {
    for (const dtype of Object.keys(SHAPES) as DType[]) {
      const K = DTYPES[dtype].blockSize === 256 ? 256 : DTYPES[dtype].blockSize === 32 ? 64 : 13;
      const { w, f } = makeWeight(be, dtype, 11, K);
      const tokens = Int32Array.from([3, 0, 10, 3]);
      const out = be.alloc(tokens.length * K);
      be.embed(out, w, tokens);
      tokens.forEach((tok, t) => assert.deepEqual(Array.from(out.subarray(t * K, (t + 1) * K)), Array.from(f.subarray(tok * K, (tok + 1) * K)), dtype));
    }
  });

  test(`${be.name} rmsNorm, rope, siluMul, add, addBias: odd sizes agree with the reference`, () => {
    const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
      for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5 * Math.abs(b[i]!) + 1e-6, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
    };
    for (const [R, D] of [
      [1, 1],
      [3, 7],
      [5, 64],
      [2, 133],
    ]) {
      const x = fill(be.alloc(R * D), 3),
        w = fill(be.alloc(D)),
        out = be.alloc(R * D);
      be.rmsNorm(out, x, w, R, D, 1e-6);
      const e = new Float32Array(R * D);
      ref.rmsNorm(e, Float32Array.from(x), Float32Array.from(w), R, D, 1e-6);
      close(out, e, `rmsNorm ${R}x${D}`);
      be.rmsNorm(x, x, w, R, D, 1e-6); // in place
      close(x, e, `rmsNorm in place ${R}x${D}`);
    }
    for (const [T, H, Dh] of [
      [1, 1, 2],
      [3, 2, 6],
      [4, 3, 64],
      [2, 2, 10],
    ]) {
      const x = fill(be.alloc(T * H * Dh)),
        e = Float32Array.from(x);
      const pos = Int32Array.from({ length: T }, (_, i) => [0, 1, 17, 1000][i]!);
      be.rope(x, pos, T, H, Dh, 1e6);
      ref.rope(e, pos, T, H, Dh, 1e6);
      close(x, e, `rope ${T}x${H}x${Dh}`);
    }
    for (const n of [1, 5, 17, 1000, 4099]) {
      const g = fill(be.alloc(n), 12),
        u = fill(be.alloc(n)),
        o = be.alloc(n),
        e = new Float32Array(n);
      be.siluMul(o, g, u, n);
      ref.siluMul(e, Float32Array.from(g), Float32Array.from(u), n);
      close(o, e, `siluMul ${n}`);
      be.add(o, g, u, n);
      ref.add(e, Float32Array.from(g), Float32Array.from(u), n);
      close(o, e, `add ${n}`);
    }
    const x = fill(be.alloc(3 * 13)),
      bias = fill(be.alloc(13)),
      e = Float32Array.from(x);
    be.addBias(x, bias, 3);
    ref.addBias(e, Float32Array.from(bias), 3);
    close(x, e, 'addBias');
  });

  test(`${be.name} attention: online softmax over ragged spans, grouped heads, long contexts`, () => {
    for (const [Hq, Hkv, Dh, lens] of [
      [1, 1, 1, [1]],
      [4, 2, 6, [1, 2, 3]],
      [14, 2, 64, [70, 150, 33]],
      [3, 3, 10, [129, 64, 65, 5]],
    ] as [number, number, number, number[]][]) {
      const T = lens.length,
        kvDim = Hkv * Dh,
        cap = Math.max(...lens) + 3;
      const spans = lens.map((len) => ({ k: fill(be.alloc(cap * kvDim), 2), v: fill(be.alloc(cap * kvDim)), len }));
      const q = fill(be.alloc(T * Hq * Dh), 2),
        out = be.alloc(T * Hq * Dh),
        e = new Float32Array(T * Hq * Dh);
      be.attention(out, q, spans, Hq, Hkv, Dh, 1 / Math.sqrt(Dh));
      ref.attention(
        e,
        Float32Array.from(q),
        spans.map((s) => ({ k: Float32Array.from(s.k), v: Float32Array.from(s.v), len: s.len })),
        Hq,
        Hkv,
        Dh,
        1 / Math.sqrt(Dh),
      );
      for (let i = 0; i < e.length; i++) assert.ok(Math.abs(out[i]! - e[i]!) <= 1e-5 + 1e-6, `attention Hq=${Hq} Dh=${Dh} [${i}]: ${out[i]} vs ${e[i]}`);
    }
  });
}

test('memory: passes release their buffers, poisoned buffers read NaN, views survive growth', () => {
  const be = new WasmBackend({ threads: 1, poison: true });
  try {
    const keep = be.alloc(100).fill(7);
    be.beginPass();
    const a = be.alloc(1000).fill(1);
    const offA = a.byteOffset;
    be.endPass();
    be.beginPass(); // releases a
    const b = be.alloc(1000);
    assert.equal(b.byteOffset, offA, 'the freed block is reused');
    assert.ok(
      b.every((v) => Number.isNaN(v)),
      'poisoned blocks read NaN',
    );
    be.endPass();
    const big = be.weight('F32', [1024, 1024 * 8]); // 32 MiB: grows the memory
    big.bytes.fill(1);
    assert.ok(
      keep.every((v) => v === 7),
      'older views still see their data after growth',
    );
    const c = be.alloc(10);
    be.free(c);
    assert.equal(be.alloc(10).byteOffset, c.byteOffset);
    assert.throws(() => be.add(new Float32Array(4), keep, keep, 4), /not allocated by this backend/);
  } finally {
    be.dispose();
  }
});
