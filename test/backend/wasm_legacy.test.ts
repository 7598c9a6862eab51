// Q4_1, Q5_0, Q5_1 and IQ4_NL products on the int8 kernels (src/kernels/q8.ts, q8_fmt.ts): activations
// quantised per 32 as for Q8_0, the min types adding min * the activation block's sum (ggml's
// Q8_1 term; IQ4_NL: its nibbles looked up in ggml's table, then as Q8_0). The oracle is the f32 path these types took before (legacyInt8: false, rows
// decoded to f32 by mm_rows): the int8 result may differ from it by the activation rounding only,
// |d| <= sum over blocks of amax_b/254 * sum|w_b| (+ f32 rounding), the bound the Q8_0 tests use.
// Then the batch-invariance properties that wasm_batch.test.ts checks for Q8_0 / Q4_0, for these
// types and for mixes of all five legacy types in one matmulMany call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WasmBackend } from '../../src/backend/wasm.js';
import { product, sameBits, wasmVariants } from '../helpers.js';
import type { DType } from '../../src/formats/dtype.js';
import { dequantize, quantize } from '../../src/formats/quant/index.js';

let seed = 4242;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const backends = wasmVariants([1, 3]);
const oracle = new WasmBackend({ threads: 1, legacyInt8: false });
after(() => [...backends, oracle].forEach((b) => b.dispose()));

const TYPES: DType[] = ['Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL'];

/** Weights with what the formats' corners need: a block of zeros (d = 0), one of a single sign
 * (Q4_1 / Q5_1: min at an end), one of equal values, large and tiny scales, the rest random. */
function weights(N: number, K: number): Float32Array {
  const f = Float32Array.from({ length: N * K }, () => rnd() * 0.5);
  for (let b = 0; b < (N * K) / 32; b++) {
    const blk = f.subarray(32 * b, 32 * b + 32);
    switch (b % 7) {
      case 1:
        blk.fill(0);
        break;
      case 2:
        blk.forEach((v, i) => (blk[i] = Math.abs(v) + 0.25));
        break;
      case 3:
        blk.forEach((v, i) => (blk[i] = -Math.abs(v) * 3));
        break;
      case 4:
        blk.fill(0.125);
        break;
      case 5:
        blk.forEach((v, i) => (blk[i] = v * 1e-4));
        break;
    }
  }
  return f;
}

/** Activations with a zero block (d = 0), an outlier, and one block at the top of the range. */
function acts(n: number): Float32Array {
  const x = Float32Array.from({ length: n }, (_, i) => rnd() * (i % 7 === 0 ? 4 : 1));
  x.fill(0, 32, Math.min(64, n));
  if (n > 100) x[100] = 60;
  return x;
}

for (const be of backends) {
  test(`${be.name}: Q4_1, Q5_0, Q5_1, IQ4_NL products on int8 activations are within the activation rounding of the f32 path`, () => {
    for (const dtype of TYPES) {
      for (const [N, K] of [
        [1, 32],
        [9, 96],
        [37, 896],
        [300, 64],
      ] as const) {
        const f = weights(N, K),
          bytes = quantize(dtype, f, N * K);
        const wf = new Float32Array(N * K);
        dequantize(dtype, bytes, 0, wf, 0, N * K);
        for (const T of [1, 4]) {
          const x = acts(T * K);
          const got = product(be, dtype, bytes, N, K, x, T),
            want = product(oracle, dtype, bytes, N, K, x, T);
          for (let t = 0; t < T; t++) {
            for (let n = 0; n < N; n++) {
              let S = 0,
                qerr = 0;
              for (let b = 0; b < K / 32; b++) {
                let amax = 0,
                  sw = 0;
                for (let j = 0; j < 32; j++) {
                  const k = b * 32 + j,
                    xv = x[t * K + k]!,
                    wv = wf[n * K + k]!;
                  amax = Math.max(amax, Math.abs(xv));
                  sw += Math.abs(wv);
                  S += Math.abs(xv * wv);
                }
                qerr += (amax / 254) * sw;
              }
              const i = t * N + n;
              assert.ok(Math.abs(got[i]! - want[i]!) <= qerr * 1.0001 + 2e-5 * S + 1e-6, `${dtype} [${N}x${K}] T=${T} (${t}, ${n}): ${got[i]} vs f32 path ${want[i]} (bound ${qerr})`);
            }
          }
        }
      }
    }
  });
}

test('Q4_1, Q5_0, Q5_1, IQ4_NL: rows bit-identical across thread counts, and one-token rows handed out in chunks equal the tile', () => {
  for (const relaxed of [true, false]) {
    const same = backends.filter((be) => be.relaxed === relaxed);
    const a = same[0]!,
      b = same[same.length - 1]!;
    assert.notEqual(a.threads, b.threads);
    for (const dtype of TYPES) {
      const N = 2600,
        K = 64; // ten chunks of 256 rows and a ragged one at three threads
      const bytes = quantize(dtype, weights(N, K), N * K);
      const xs = acts(5 * K);
      const one = product(b, dtype, bytes, N, K, xs.subarray(0, K), 1);
      sameBits(one, product(a, dtype, bytes, N, K, xs.subarray(0, K), 1), `${dtype} T=1 x${b.threads} vs x${a.threads}`);
      const five = product(b, dtype, bytes, N, K, xs, 5);
      sameBits(one, five.subarray(0, N), `${dtype} T=1 vs the first row of T=5`);
      sameBits(five, product(a, dtype, bytes, N, K, xs, 5), `${dtype} T=5 x${b.threads} vs x${a.threads}`);
    }
  }
});

for (const be of backends) {
  test(`${be.name}: a mix of the legacy types and IQ4_NL in one matmulMany equals each product alone, T = 1, 2, 7`, () => {
    // the Q4_K_M mix of a 0.5B model: q, k Q5_0, v Q8_0 (llama.cpp's fallback for 896-wide rows)
    const types: DType[] = ['Q5_0', 'Q5_0', 'Q8_0', 'Q4_1', 'Q5_1', 'Q4_0', 'IQ4_NL'];
    const K = 192,
      Ns = [40, 16, 9, 21, 300, 7, 33];
    const ws = types.map((dt, i) => {
      const w = be.weight(dt, [Ns[i]!, K]);
      w.bytes.set(quantize(dt, weights(Ns[i]!, K), Ns[i]! * K));
      return w;
    });
    for (const T of [1, 2, 7]) {
      const x = be.alloc(T * K);
      x.set(acts(T * K));
      const outs = ws.map((w) => be.alloc(T * w.shape[0]!));
      be.matmulMany(outs, x, ws, T);
      ws.forEach((w, i) => {
        const one = be.alloc(T * w.shape[0]!);
        be.matmul(one, x, w, T);
        sameBits(outs[i]!, one, `${types.join('+')} T=${T} product ${i} (${types[i]})`);
      });
    }
  });
}

// The vpdpbusd tile (Node 24+ on x86 with AVX-VNNI) and the int16 tile compute each block's
// integer dot exactly, so they must agree to the bit.
const u8 = backends.filter((be) => be.u8dot);
test('Q4_1, Q5_0, Q5_1, IQ4_NL: the vpdpbusd tile and the int16 tile give the same bits', {
  skip: u8.length ? false : `this engine's relaxed dot is not the exact vpdpbusd form (${process.version}, ${process.arch})`,
}, () => {
  for (const a of u8) {
    const b = backends.find((o) => o.relaxed && !o.u8dot && o.threads === a.threads)!;
    for (const dtype of TYPES) {
      for (const [N, K] of [
        [75, 160],
        [130, 896],
      ] as const) {
        const bytes = quantize(dtype, weights(N, K), N * K);
        for (const T of [2, 3, 17]) {
          const xs = acts(T * K);
          sameBits(product(a, dtype, bytes, N, K, xs, T), product(b, dtype, bytes, N, K, xs, T), `${dtype} ${N}x${K} T=${T}: ${a.name} vs ${b.name}`);
        }
      }
    }
  }
});
