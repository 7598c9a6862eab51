// KV caches stored as f16 or q8_0 (--cache-type): Backend.storeRows and attention on such spans,
// the WebAssembly kernels against the reference backend.
//   storeRows: every backend stores the same bytes, and they are src/formats' f32ToF16 /
//     quantizeQ8_0 (ggml's GGML_FP32_TO_FP16 and quantize_row_q8_0_ref): ties, subnormals,
//     overflow, NaN and infinities included.
//   attention: the kernels decode rows exactly, so WebAssembly on an f16 / q8_0 cache gives the
//     bits it gives on an f32 cache holding the decoded values; against the reference (f64) on the
//     same stored cache, 1e-5 relative to max |v| (+1e-6), as for f32 attention.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { kvRowWords, type KvType } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { dequantize, quantize } from '../../src/formats/quant/index.js';
import { sameBits, wasmVariants } from '../helpers.js';

let seed = 777;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const fill = (a: Float32Array, scale = 1) => {
  for (let i = 0; i < a.length; i++) a[i] = rnd() * scale;
  return a;
};
const DT = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0' } as const;
const ref = new ReferenceBackend();
const backends = wasmVariants([1, 3]);
after(() => backends.forEach((b) => b.dispose()));

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Rows whose rounding is delicate: f16 ties, subnormals, overflow, NaN; q8_0 halves (d = 1), zero blocks. */
function hardRows(width: number): Float32Array {
  const rows: number[][] = [];
  const specials = [1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 2 ** -25, 3 * 2 ** -25, 3e-6, -6.1e-5, 65504, 65519.9, 65520, -0, 1e-30, 2.5, -3.5, 126.5, -0.5];
  rows.push(Array.from({ length: width }, (_, i) => specials[i % specials.length]!));
  rows.push(Array.from({ length: width }, (_, i) => (i % 32 === 0 ? 127 : ((i * 37) % 255) / 2 - 63.5))); // amax 127: d = 1, halves everywhere
  rows.push(Array.from({ length: width }, () => 0));
  rows.push(Array.from({ length: width }, (_, i) => (i === 5 ? NaN : rnd())));
  rows.push(Array.from({ length: width }, (_, i) => (i === 40 % width ? -Infinity : rnd() * 3)));
  rows.push(Array.from({ length: width }, () => rnd() * 1e-3));
  return Float32Array.from(rows.flat());
}

for (const be of backends) {
  test(`${be.name} storeRows: f16 and q8_0 rows are ggml's bytes (the reference's), written from any batch row`, () => {
    for (const type of ['f32', 'f16', 'q8_0'] as KvType[]) {
      for (const width of type === 'q8_0' ? [32, 64, 96] : [6, 32, 64]) {
        const src = hardRows(width),
          n = src.length / width,
          words = kvRowWords(type, width);
        const x = be.alloc(src.length);
        x.set(src);
        const dst = be.alloc((n + 3) * words),
          dr = new Float32Array((n + 3) * words);
        // rows 1.. into cache rows 3.., then row 0 alone into cache row 0 (a decode step)
        be.storeRows(dst, 3, x, 1, n - 1, width, type);
        be.storeRows(dst, 0, x, 0, 1, width, type);
        ref.storeRows(dr, 3, src, 1, n - 1, width, type);
        ref.storeRows(dr, 0, src, 0, 1, width, type);
        for (let r = 0; r < n; r++) {
          const want = quantize(DT[type], src.subarray(r * width, (r + 1) * width), width);
          const at = 4 * words * (r === 0 ? 0 : r + 2);
          assert.deepEqual(bytesOf(dst).subarray(at, at + want.length), want, `${type} width ${width} row ${r}: wasm`);
          assert.deepEqual(bytesOf(dr).subarray(at, at + want.length), want, `${type} width ${width} row ${r}: reference`);
        }
      }
    }
  });

  test(`${be.name} attention on f16 and q8_0 caches: the f32 kernel's bits on the decoded rows, the reference's values`, () => {
    // per query row its cache length; a negative entry -n: a row of the previous row's sequence
    // (the same cache) at length n, as in a prefill, whose rows share each decoded block (tiles)
    const prefill = (from: number, n: number) => [from, ...Array.from({ length: n - 1 }, (_, i) => -(from + i + 1))];
    const shapes: [number, number, number, number[]][] = [
      [1, 1, 32, [1]],
      [4, 2, 32, [1, 2, 3]],
      [14, 2, 64, [70, 150, 33]],
      [6, 3, 64, [129, 64, 65, 5]],
      [4, 1, 128, [200, 1]],
      [14, 2, 64, [...prefill(50, 20), ...prefill(3, 3), 7, ...prefill(60, 9)]],
      [8, 2, 32, prefill(1, 70)],
    ];
    for (const type of ['f16', 'q8_0'] as KvType[]) {
      for (const [Hq, Hkv, Dh, rows] of [
        ...shapes,
        ...(type === 'f16'
          ? ([
              [4, 2, 6, [1, 2, 3]],
              [3, 3, 10, [129, 64, 65, 5]],
              [3, 3, 10, prefill(60, 12)],
            ] as typeof shapes)
          : []),
      ]) {
        const lens = rows.map(Math.abs);
        const T = lens.length,
          kvDim = Hkv * Dh,
          cap = Math.max(...lens) + 3,
          words = kvRowWords(type, kvDim);
        const caches = lens.map((len) => {
          const k = fill(new Float32Array(cap * kvDim), 2),
            v = fill(new Float32Array(cap * kvDim));
          const span = { k: be.alloc(cap * words), v: be.alloc(cap * words), len, type };
          const rspan = { k: new Float32Array(cap * words), v: new Float32Array(cap * words), len, type };
          const kx = be.alloc(cap * kvDim),
            vx = be.alloc(cap * kvDim);
          kx.set(k);
          vx.set(v);
          be.storeRows(span.k, 0, kx, 0, cap, kvDim, type);
          be.storeRows(span.v, 0, vx, 0, cap, kvDim, type);
          ref.storeRows(rspan.k, 0, k, 0, cap, kvDim, type);
          ref.storeRows(rspan.v, 0, v, 0, cap, kvDim, type);
          // the f32 cache of the decoded values
          const plain = { k: be.alloc(cap * kvDim), v: be.alloc(cap * kvDim), len };
          for (const [dst, from] of [
            [plain.k, rspan.k],
            [plain.v, rspan.v],
          ] as const) {
            for (let j = 0; j < cap; j++) dequantize(DT[type], bytesOf(from), 4 * words * j, dst, j * kvDim, kvDim);
          }
          return { span, rspan, plain };
        });
        // rows of one sequence read the first row's cache
        const typed = rows.map((_, t) => {
          let c = t;
          while (rows[c]! < 0) c--;
          const { span, rspan, plain } = caches[c]!;
          return { span: { ...span, len: lens[t]! }, rspan: { ...rspan, len: lens[t]! }, plain: { ...plain, len: lens[t]! } };
        });
        const q = fill(be.alloc(T * Hq * Dh), 2),
          out = be.alloc(T * Hq * Dh),
          out2 = be.alloc(T * Hq * Dh),
          e = new Float32Array(T * Hq * Dh);
        const scale = 1 / Math.sqrt(Dh);
        be.attention(
          out,
          q,
          typed.map((s) => s.span),
          Hq,
          Hkv,
          Dh,
          scale,
        );
        be.attention(
          out2,
          q,
          typed.map((s) => s.plain),
          Hq,
          Hkv,
          Dh,
          scale,
        );
        sameBits(out, out2, `${type} Hq=${Hq} Hkv=${Hkv} Dh=${Dh}`);
        ref.attention(
          e,
          Float32Array.from(q),
          typed.map((s) => s.rspan),
          Hq,
          Hkv,
          Dh,
          scale,
        );
        for (let i = 0; i < e.length; i++) assert.ok(Math.abs(out[i]! - e[i]!) <= 1e-5 + 1e-6, `${type} attention Hq=${Hq} Dh=${Dh} [${i}]: ${out[i]} vs ${e[i]}`);
      }
    }
  });
}

test('attention refuses a call mixing KV-cache types, and storeRows q8_0 rows that are not whole blocks', () => {
  const be = backends[0]!;
  const span = (type: KvType) => ({ k: be.alloc(64), v: be.alloc(64), len: 1, type });
  assert.throws(() => be.attention(be.alloc(64), be.alloc(64), [span('f16'), span('q8_0')], 2, 2, 32, 1), /different KV-cache types/);
  assert.throws(() => be.storeRows(be.alloc(64), 0, be.alloc(48), 0, 1, 48, 'q8_0'), /multiple of 32/);
});
