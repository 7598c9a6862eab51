// The small-batch kernels (a few rows, e.g. a speculative verify pass): F16 / BF16 (src/kernels/
// small.ts, up to SMALL_ROWS / SMALL_F16_ROWS rows), the legacy block types (small_q8.ts, up to SMALL_Q8_ROWS) and
// the K-quants (small_kq in kq.ts, up to SMALL_KQ_ROWS):
// every row must be bit-identical to the same row alone (the one-token kernel) and to the kernel
// before (mm_rows, the int8 tiles), whatever T, the thread count and the token grouping; and the
// float products must agree with the reference backend (a plain f64 loop).
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { SMALL_F16_ROWS, SMALL_KQ_ROWS, SMALL_Q8_ROWS, SMALL_ROWS, WasmBackend } from '../../src/backend/wasm.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import type { Weight } from '../../src/backend/backend.js';
import type { DType } from '../../src/formats/dtype.js';
import { quantize } from '../../src/formats/quant/index.js';
import { compare, rng, sameBits, wasmVariants } from '../helpers.js';

const r = rng(4242),
  rnd = () => 2 * r() - 1;
const backends = wasmVariants([1, 2, 3]);
const before = [new WasmBackend({ threads: 2, smallBatch: false }), new WasmBackend({ threads: 1, relaxed: false, smallBatch: false })];
after(() => [...backends, ...before].forEach((b) => b.dispose()));

// K: float types, a multiple of 8, one with a 4-column step left, one with a scalar tail too;
// block types, multiples of 32. N: ragged over four streams and the parts, and one below a stream block
const FLOAT_SHAPES: [number, number][] = [
  [37, 64],
  [130, 84],
  [3, 93],
  [261, 200],
];
const BLOCK_SHAPES: [number, number][] = [
  [37, 64],
  [130, 96],
  [3, 32],
  [261, 224],
];
// K-quants: blocks of 256; eight-row groups over eight streams, ragged groups, one below a group
const KQ_SHAPES: [number, number][] = [
  [131, 256],
  [5, 512],
];
const CASES: [DType, [number, number][], number][] = [
  ['BF16', FLOAT_SHAPES, SMALL_ROWS],
  ['F16', FLOAT_SHAPES, SMALL_F16_ROWS],
  ...(['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL'] as DType[]).map((d): [DType, [number, number][], number] => [d, BLOCK_SHAPES, SMALL_Q8_ROWS]),
  ...(['Q4_K', 'Q5_K', 'Q6_K', 'Q3_K', 'IQ4_XS'] as DType[]).map((d): [DType, [number, number][], number] => [d, KQ_SHAPES, SMALL_KQ_ROWS]),
];
const FLOAT = new Set<DType>(['BF16', 'F16']);

function weight(be: WasmBackend, dtype: DType, bytes: Uint8Array, N: number, K: number): Weight {
  const w = be.weight(dtype, [N, K]);
  w.bytes.set(bytes);
  return w;
}

function inputs(T: number, K: number): Float32Array {
  return Float32Array.from({ length: T * K }, (_, i) => rnd() * (i % 5 === 0 ? 3 : 1));
}

for (const [dtype, shapes, most] of CASES) {
  const TS = [...Array.from({ length: most - 1 }, (_, i) => i + 2), most + 1, 2 * most + 1]; // 2..most, then past it
  const Tmax = Math.max(2 * most + 1, 8); // also the second test's rows
  for (const [N, K] of shapes) {
    const bytes = quantize(
      dtype,
      Float32Array.from({ length: N * K }, () => rnd() * 0.5),
      N * K,
    );
    const xs = inputs(Tmax, K);

    test(`${dtype} [${N}x${K}]: each row of T = 2..${Tmax} is the bits of that row alone, on every build and thread count`, () => {
      for (const be of backends) {
        const w = weight(be, dtype, bytes, N, K);
        const x = be.alloc(xs.length),
          alone = be.alloc(Tmax * N);
        x.set(xs);
        for (let t = 0; t < Tmax; t++) be.matmul(alone.subarray(t * N, (t + 1) * N), x.subarray(t * K, (t + 1) * K), w, 1);
        for (const T of TS) {
          const out = be.alloc(T * N);
          be.matmul(out, x, w, T);
          sameBits(out, alone.subarray(0, T * N), `${be.name} ${dtype} [${N}x${K}] T=${T}`);
        }
      }
    });

    test(`${dtype} [${N}x${K}]: small-batch rows are the bits of the kernel before (mm_rows, the tiles)${FLOAT.has(dtype) ? ', and agree with the reference backend' : ''}`, () => {
      const ref = new ReferenceBackend();
      const rw = ref.weight(dtype, [N, K]);
      rw.bytes.set(bytes);
      for (const T of [2, 3, 5, 8]) {
        const want = ref.alloc(T * N);
        ref.matmul(want, xs.subarray(0, T * K), rw, T);
        for (const relaxed of [true, false]) {
          const be = backends.find((b) => b.relaxed === relaxed && b.threads === 2)!,
            old = before.find((b) => b.relaxed === relaxed)!;
          const got = Float32Array.from(run(be, dtype, bytes, N, K, xs, T));
          sameBits(got, run(old, dtype, bytes, N, K, xs, T), `${dtype} [${N}x${K}] T=${T}: ${be.name} vs ${old.name}`);
          if (!FLOAT.has(dtype)) continue; // int8 activations: the tiles' own tests hold them to the reference
          const c = compare(got, want, 1e-4, 1e-5); // f32 sums against f64's: a few ulps of |sum| ~ 10
          assert.ok(c.ok, `${dtype} [${N}x${K}] T=${T} ${be.name}: ${c.maxAbs} from the reference at ${c.worst}`);
        }
      }
    });
  }
}

/** x rows 0..T-1 times a fresh weight on be (a copy of the output). */
function run(be: WasmBackend, dtype: DType, bytes: Uint8Array, N: number, K: number, xs: Float32Array, T: number): Float32Array {
  const w = weight(be, dtype, bytes, N, K),
    x = be.alloc(T * K),
    out = be.alloc(T * N);
  x.set(xs.subarray(0, T * K));
  be.matmul(out, x, w, T);
  return Float32Array.from(out);
}

test('matmulMany: several BF16 / F16 weights of one x at T = 3 and 5, each its own matmul', () => {
  for (const be of backends.filter((b) => b.threads === 3)) {
    for (const dtype of ['BF16', 'F16'] as DType[]) {
      const K = 96,
        Ns = [40, 9, 130];
      const ws = Ns.map((N) =>
        weight(
          be,
          dtype,
          quantize(
            dtype,
            Float32Array.from({ length: N * K }, () => rnd()),
            N * K,
          ),
          N,
          K,
        ),
      );
      for (const T of [3, 5]) {
        const x = be.alloc(T * K);
        x.set(inputs(T, K));
        const outs = ws.map((w) => be.alloc(T * w.shape[0]!));
        be.matmulMany(outs, x, ws, T);
        ws.forEach((w, i) => {
          const one = be.alloc(T * w.shape[0]!);
          be.matmul(one, x, w, T);
          sameBits(outs[i]!, one, `${be.name} ${dtype} T=${T} product ${i}`);
        });
      }
    }
  }
});
