// Batch invariance: the server batches concurrent requests, and a request's greedy output must be
// the same alone or among others. So every row of a WebAssembly matmul must be bit-identical
// whatever the number of rows T in the call (and the thread count, and whether the product ran
// alone or inside matmulMany): Q8_0 and Q4_0 run int8 activations for every T (the one-token kernel and
// the many-token tile make the same sums), F16 makes the same sums in mv_f16 (T = 1) and mm_rows
// (mv_f16 works on values scaled by 2^-16, which changes no rounding unless values fall below
// 2^-110, f32's denormal range there; these inputs are ordinary, as a working model's are).
import { test, after } from 'node:test';
import type { WasmBackend } from '../../src/backend/wasm.js';
import { product, sameBits, wasmVariants } from '../helpers.js';
import type { Weight } from '../../src/backend/backend.js';
import type { DType } from '../../src/formats/dtype.js';
import { quantize } from '../../src/formats/quant/index.js';

let seed = 777;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const backends = wasmVariants([1, 3]);
after(() => backends.forEach((b) => b.dispose()));

const TS = [1, 2, 3, 4, 5, 8, 17];
// N: more rows than one eight-row group per part, plus a ragged rest; K: ragged for float types
const SHAPES: Record<DType, [number, number]> = {
  F32: [45, 83],
  F16: [45, 83],
  BF16: [37, 80],
  Q8_0: [75, 160],
  Q4_0: [21, 96],
  Q4_1: [21, 96],
  Q5_0: [21, 64],
  Q5_1: [21, 160],
  Q4_K: [13, 256],
  Q6_K: [13, 256],
  Q2_K: [13, 256],
  Q3_K: [13, 256],
  Q5_K: [13, 512],
  IQ4_NL: [21, 96],
  IQ4_XS: [13, 256],
};

function makeWeight(be: WasmBackend, dtype: DType, N: number, K: number): Weight {
  const src = Float32Array.from({ length: N * K }, () => rnd() * 0.5);
  const w = be.weight(dtype, [N, K]);
  w.bytes.set(dtype === 'F32' ? new Uint8Array(src.buffer) : quantize(dtype, src, N * K));
  return w;
}

for (const be of backends) {
  for (const dtype of Object.keys(SHAPES) as DType[]) {
    test(`${be.name} matmul ${dtype}: every row of a batch is bit-identical to that row alone`, () => {
      const [N, K] = SHAPES[dtype];
      const w = makeWeight(be, dtype, N, K);
      const x = be.alloc(17 * K);
      for (let i = 0; i < x.length; i++) x[i] = rnd() * (i % 7 === 0 ? 4 : 1);
      const alone = be.alloc(17 * N);
      for (let t = 0; t < 17; t++) be.matmul(alone.subarray(t * N, (t + 1) * N), x.subarray(t * K, (t + 1) * K), w, 1);
      for (const T of TS) {
        const out = be.alloc(T * N);
        be.matmul(out, x, w, T);
        sameBits(out, alone.subarray(0, T * N), `${dtype} [${N}x${K}] T=${T}`);
      }
    });
  }

  test(`${be.name} matmulMany: each product equals its own matmul, for Q8_0, Q4_0, F16 and mixed types`, () => {
    for (const types of [
      ['Q8_0', 'Q8_0', 'Q8_0'],
      ['Q4_0', 'Q4_0'],
      ['F16', 'F16'],
      ['F16', 'Q8_0', 'F32', 'Q4_0'],
    ] as DType[][]) {
      const K = 96,
        Ns = [40, 16, 9, 21];
      const ws = types.map((dt, i) => makeWeight(be, dt, Ns[i]!, K));
      for (const T of [1, 5]) {
        const x = be.alloc(T * K);
        for (let i = 0; i < x.length; i++) x[i] = rnd();
        const outs = ws.map((w) => be.alloc(T * w.shape[0]!));
        be.matmulMany(outs, x, ws, T);
        ws.forEach((w, i) => {
          const one = be.alloc(T * w.shape[0]!);
          be.matmul(one, x, w, T);
          sameBits(outs[i]!, one, `${types.join('+')} T=${T} product ${i}`);
        });
      }
    }
  });
}

test('rows are also bit-identical across thread counts', () => {
  for (const relaxed of [true, false]) {
    const same = backends.filter((be) => be.relaxed === relaxed);
    const a = same[0],
      b = same[same.length - 1];
    if (!a || !b || a.threads === b.threads) continue;
    for (const dtype of ['Q8_0', 'Q4_0', 'F16'] as DType[]) {
      const [N, K] = SHAPES[dtype];
      const src = Float32Array.from({ length: N * K }, () => rnd() * 0.5);
      const bytes = quantize(dtype, src, N * K);
      for (const T of [1, 5]) {
        const xs = Float32Array.from({ length: T * K }, () => rnd());
        sameBits(product(a, dtype, bytes, N, K, xs, T), product(b, dtype, bytes, N, K, xs, T), `${dtype} T=${T} x${a.threads} vs x${b.threads}`);
      }
    }
  }
});

// One-token products over many rows hand the rows out in chunks through a shared counter (the
// threads take what is left): the rows must not depend on which thread took them, or on T.
test('one-token Q8_0 / Q4_0 products chunked over threads give the bits of one thread and of the tile', () => {
  for (const relaxed of [true, false]) {
    const same = backends.filter((be) => be.relaxed === relaxed);
    const a = same[0],
      b = same[same.length - 1];
    if (!a || !b || a.threads === b.threads) continue;
    for (const dtype of ['Q8_0', 'Q4_0'] as DType[]) {
      const N = 2600,
        K = 64; // ten chunks of 256 rows and a ragged one at three threads
      const bytes = quantize(
        dtype,
        Float32Array.from({ length: N * K }, () => rnd() * 0.5),
        N * K,
      );
      const xs = Float32Array.from({ length: 2 * K }, () => rnd());
      const one = product(b, dtype, bytes, N, K, xs.subarray(0, K), 1);
      sameBits(one, product(a, dtype, bytes, N, K, xs.subarray(0, K), 1), `${dtype} T=1 x${b.threads} vs x${a.threads}`);
      sameBits(one, product(b, dtype, bytes, N, K, xs, 2).subarray(0, N), `${dtype} T=1 vs the first row of T=2`);
    }
  }
});

// The vpdpbusd tile (Node 24+ on x86 with AVX-VNNI) and the int16 tile both compute each
// block's integer dot exactly, so they must agree to the bit; elsewhere the tile never runs.
const u8 = backends.filter((be) => be.u8dot);
test('Q8_0, Q4_0: the vpdpbusd tile and the int16 tile give the same bits', {
  skip: u8.length ? false : `this engine's relaxed dot is not the exact vpdpbusd form (${process.version}, ${process.arch}); CI also runs these tests on Node 24`,
}, () => {
  for (const a of u8) {
    const b = backends.find((o) => o.relaxed && !o.u8dot && o.threads === a.threads)!;
    for (const [dtype, N, K] of [
      ['Q8_0', 75, 160],
      ['Q8_0', 9, 4864],
      ['Q8_0', 130, 896],
      ['Q4_0', 75, 160],
      ['Q4_0', 130, 896],
    ] as const) {
      const src = Float32Array.from({ length: N * K }, () => rnd() * 0.5);
      const bytes = quantize(dtype, src, N * K);
      for (const T of [2, 3, 17]) {
        const xs = Float32Array.from({ length: T * K }, () => rnd() * (1 + 10 * Math.abs(rnd())));
        sameBits(product(a, dtype, bytes, N, K, xs, T), product(b, dtype, bytes, N, K, xs, T), `${dtype} ${N}x${K} T=${T}: ${a.name} vs ${b.name}`);
      }
    }
  }
});
