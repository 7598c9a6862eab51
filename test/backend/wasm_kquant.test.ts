// The K-quant int8 kernels (src/kernels/kq.ts; Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) called directly on both builds: Q8_K activations
// equal ggml's quantize_row_q8_K_ref; products agree with an f64 oracle on the same quantised
// activations (float rounding only) and with the f32 decode path mm_rows (within the activation
// rounding); every (token, row) is bit-identical whatever T (the one-token kernel and the
// many-token tile), the number of parts and the one-token counter mode. Weights: ggml-quantised random rows, and random bytes (every nibble,
// scale, min and sign, Q6_K's scale -128 included) with sane f16 d / dmin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sameBits } from '../helpers.js';
import { relaxedModule, simdModule } from '../../src/backend/wasm_module.js';
import type { DType } from '../../src/formats/dtype.js';
import { DTYPES } from '../../src/formats/dtype.js';
import { dequantize, f32ToF16, quantize } from '../../src/formats/quant/index.js';

type Fn = (...a: number[]) => number;
const ID: Partial<Record<DType, number>> = { Q4_K: 5, Q6_K: 6, Q3_K: 11, Q5_K: 12, IQ4_XS: 14 };

let seed = 4242;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;

class Mod {
  readonly mem = new WebAssembly.Memory({ initial: 256, maximum: 4096, shared: true });
  readonly ex: Record<string, Fn>;
  top = 1 << 20;
  constructor(
    readonly name: string,
    m: WebAssembly.Module,
  ) {
    const inst = new WebAssembly.Instance(m, {
      env: {
        memory: this.mem,
        abort() {
          throw new Error('wasm abort');
        },
      },
    });
    this.ex = inst.exports as unknown as Record<string, Fn>;
    this.ex.init_tables!();
  }
  alloc(bytes: number): number {
    const o = this.top;
    this.top += Math.ceil(bytes / 64) * 64 + 64;
    if (this.top > this.mem.buffer.byteLength) this.mem.grow(Math.ceil((this.top - this.mem.buffer.byteLength) / 65536));
    return o;
  }
  put(b: Uint8Array | Float32Array | Int32Array): number {
    const o = this.alloc(b.byteLength);
    new Uint8Array(this.mem.buffer, o, b.byteLength).set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    return o;
  }
  f32(o: number, n: number): Float32Array {
    return new Float32Array(this.mem.buffer, o, n).slice();
  }
}

const mods: Mod[] = [new Mod('simd', simdModule())];
const rm = relaxedModule();
if (rm) mods.push(new Mod('relaxed', rm));

/** quantize_row_q8_K_ref in JS (f32 arithmetic): q, d, and the sums of 16. */
function q8kRef(x: Float32Array): { q: Int8Array; d: Float32Array; bs: Int16Array } {
  const nb = x.length / 256,
    q = new Int8Array(x.length),
    d = new Float32Array(nb),
    bs = new Int16Array(nb * 16);
  for (let b = 0; b < nb; b++) {
    let amax = 0,
      mx = 0;
    for (let j = 0; j < 256; j++) {
      const a = Math.abs(x[b * 256 + j]!);
      if (a > amax) {
        amax = a;
        mx = x[b * 256 + j]!;
      }
    }
    if (amax === 0) continue;
    const is = Math.fround(-127 / mx);
    for (let j = 0; j < 256; j++) {
      const v = Math.fround(is * x[b * 256 + j]!);
      let r = Math.round(v);
      if (Math.abs(v % 1) === 0.5 && r % 2 !== 0) r -= 1; // nearest, ties to even
      q[b * 256 + j] = Math.min(127, r);
    }
    for (let j = 0; j < 16; j++) {
      let s = 0;
      for (let i = 0; i < 16; i++) s += q[b * 256 + j * 16 + i]!;
      bs[b * 16 + j] = s;
    }
    d[b] = Math.fround(1 / is);
  }
  return { q, d, bs };
}

function randomX(T: number, K: number): Float32Array {
  const x = new Float32Array(T * K);
  for (let i = 0; i < x.length; i++) x[i] = rnd() * (i % 11 === 0 ? 6 : 1);
  if (K >= 512) x.fill(0, 256, 512); // an all-zero block (d = 0)
  return x;
}

/** Weights of dtype [N, K]: ggml-quantised random values, or random bytes with sane f16 scales. */
function weights(dtype: DType, N: number, K: number, raw: boolean): Uint8Array {
  if (!raw)
    return quantize(
      dtype,
      Float32Array.from({ length: N * K }, () => rnd() * 0.1),
      N * K,
    );
  const { blockBytes } = DTYPES[dtype]!,
    nb = (N * K) / 256;
  const b = Uint8Array.from({ length: nb * blockBytes }, () => (rnd() * 128 + 128) & 255);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < nb; i++) {
    const o = i * blockBytes;
    if (dtype === 'Q6_K') dv.setUint16(o + 208, f32ToF16((rnd() + 1.1) * 1e-3), true);
    else if (dtype === 'IQ4_XS') dv.setUint16(o, f32ToF16((rnd() + 1.1) * 1e-3), true);
    else if (dtype === 'Q3_K') dv.setUint16(o + 108, f32ToF16((rnd() + 1.1) * 1e-3), true);
    else {
      dv.setUint16(o, f32ToF16((rnd() + 1.1) * 1e-3), true);
      dv.setUint16(o + 2, f32ToF16((rnd() + 1.1) * 1e-3), true);
    }
  }
  if (dtype === 'Q6_K') b[192] = 0x80; // scale -128
  return b;
}

interface Prod {
  out: number;
  w: number;
  N: number;
  dt: number;
}

/** mm_kq over `parts` parts (run one after another; each thread runs one), or the counter mode. */
function runKq(m: Mod, prods: Prod[], x: Float32Array, T: number, K: number, parts: number, counter: boolean): Float32Array[] {
  const nb = K / 256;
  const px = m.put(x),
    xq = m.alloc(T * K),
    xd = m.alloc(T * nb * 4),
    xb = m.alloc(T * nb * 48);
  const xw = T > 1 ? m.alloc(T * K * 2) : 0;
  m.ex.quant_q8k!(px, T, K, xq, xd, xb, xw);
  const desc = m.put(Int32Array.from(prods.flatMap((p) => [p.out, p.w, p.N, p.dt])));
  const c = counter ? m.put(new Int32Array(1)) : 0;
  const stride = Math.ceil(m.ex.kq_scratch_bytes!(K) / 64) * 64,
    sc = T > 1 ? m.alloc(stride * parts) : 0;
  if (sc) new Uint8Array(m.mem.buffer, sc, stride * parts).fill(0xff); // the tile must not read what it did not write
  for (let part = 0; part < parts; part++) m.ex.mm_kq!(part, parts, desc, prods.length, xq, xd, xb, xw, T, K, sc, stride, c);
  return prods.map((p) => m.f32(p.out, T * p.N));
}

for (const m of mods) {
  test(`kq ${m.name}: quant_q8k is ggml's quantize_row_q8_K_ref (q, d, sums of 16 and 32)`, () => {
    const T = 3,
      K = 768,
      x = randomX(T, K);
    x[5] = -x[5]! * 40;
    x[300] = 50;
    x[301] = -50; // a negative largest value; a tie (first wins)
    const px = m.put(x),
      xq = m.alloc(T * K),
      xd = m.alloc(T * 3 * 4),
      xb = m.alloc(T * 3 * 48),
      xw = m.alloc(T * K * 2);
    m.ex.quant_q8k!(px, T, K, xq, xd, xb, xw);
    const r = q8kRef(x);
    assert.deepEqual(new Int8Array(m.mem.buffer, xq, T * K), r.q);
    assert.deepEqual(new Int16Array(m.mem.buffer, xw, T * K), Int16Array.from(r.q));
    sameBits(m.f32(xd, T * 3), r.d, 'd');
    const s = new Int16Array(m.mem.buffer, xb, T * 3 * 24);
    for (let b = 0; b < T * 3; b++) {
      for (let j = 0; j < 16; j++) assert.equal(s[b * 24 + j], r.bs[b * 16 + j]);
      for (let j = 0; j < 8; j++) assert.equal(s[b * 24 + 16 + j], r.bs[b * 16 + 2 * j]! + r.bs[b * 16 + 2 * j + 1]!);
    }
  });

  for (const dtype of ['Q4_K', 'Q5_K', 'Q6_K', 'IQ4_XS', 'Q3_K'] as DType[]) {
    for (const raw of [false, true]) {
      test(`kq ${m.name} ${dtype}${raw ? ' (random bytes)' : ''}: matches the f64 oracle and mm_rows; T-, part- and counter-invariant`, () => {
        for (const [N, K] of [
          [13, 256],
          [37, 512],
          [70, 1024],
          [300, 256],
        ] as [number, number][]) {
          const wb = weights(dtype, N, K, raw),
            pw = m.put(wb);
          const Tmax = 9,
            x = randomX(Tmax, K);
          const prod = (T: number) => ({ out: m.alloc(T * N * 4), w: pw, N, dt: ID[dtype]! });
          // oracle: decoded weights (exact) times the Q8_K activations, in f64
          const wf = new Float32Array(N * K);
          dequantize(dtype, wb, 0, wf, 0, N * K);
          const r = q8kRef(x);
          const [alone] = runKq(m, [prod(1)], x.subarray(0, K), 1, K, 1, false);
          const ones: Float32Array[] = [];
          for (let t = 0; t < Tmax; t++) ones.push(runKq(m, [prod(1)], x.subarray(t * K, (t + 1) * K), 1, K, 1, false)[0]!);
          sameBits(alone!, ones[0]!, 'repeat');
          for (let t = 0; t < Tmax; t++) {
            for (let n = 0; n < N; n++) {
              let e = 0,
                mag = 0;
              for (let k = 0; k < K; k++) {
                const p = wf[n * K + k]! * r.q[t * K + k]! * r.d[(t * K + k) >> 8]!;
                e += p;
                mag += Math.abs(p);
              }
              const got = ones[t]![n]!;
              assert.ok(Math.abs(got - e) <= 2e-6 * mag + 1e-30, `${dtype} [${N}x${K}] t=${t} n=${n}: ${got} vs ${e} (mag ${mag})`);
            }
          }
          // mm_rows (decode to f32, unquantised x): within the activation rounding
          const po = m.alloc(Tmax * N * 4),
            pxf = m.put(x),
            sc = m.alloc(16 * K + 64);
          m.ex.mm_rows!(0, 1, po, pw, pxf, Tmax, N, K, ID[dtype]!, sc, 0);
          const f = m.f32(po, Tmax * N);
          for (let t = 0; t < Tmax; t++) {
            for (let n = 0; n < N; n++) {
              let mag = 0;
              for (let k = 0; k < K; k++) mag += Math.abs(wf[n * K + k]! * x[t * K + k]!);
              assert.ok(Math.abs(ones[t]![n]! - f[t * N + n]!) <= 0.02 * mag, `${dtype} vs mm_rows t=${t} n=${n}`);
            }
          }
          // bit-identical whatever T, parts, counter mode
          const want = new Float32Array(Tmax * N);
          ones.forEach((o, t) => want.set(o, t * N));
          for (const T of [2, 3, 5, 9]) {
            for (const parts of [1, 2, 3]) {
              const [o] = runKq(m, [prod(T)], x.subarray(0, T * K), T, K, parts, false);
              sameBits(o!, want.subarray(0, T * N), `${dtype} [${N}x${K}] T=${T} parts=${parts}`);
            }
          }
          for (const parts of [1, 2, 5]) {
            for (const counter of [false, true]) {
              const [o] = runKq(m, [prod(1)], x.subarray(0, K), 1, K, parts, counter);
              sameBits(o!, ones[0]!, `${dtype} [${N}x${K}] T=1 parts=${parts} counter=${counter}`);
            }
          }
        }
      });
    }
  }

  test(`kq ${m.name}: several matrices of mixed K-quant types share one call, each as alone`, () => {
    const K = 512,
      T = 3,
      x = randomX(T, K);
    const specs: [DType, number][] = [
      ['Q4_K', 40],
      ['Q6_K', 17],
      ['Q5_K', 9],
      ['IQ4_XS', 11],
      ['Q3_K', 19],
      ['Q4_K', 300],
    ];
    const ws = specs.map(([dt, N]) => ({ dt, N, w: m.put(weights(dt, N, K, false)) }));
    for (const t of [1, T]) {
      for (const [parts, counter] of [
        [1, false],
        [3, false],
        [2, true],
      ] as [number, boolean][]) {
        if (counter && t > 1) continue;
        const all = runKq(
          m,
          ws.map((w) => ({ out: m.alloc(t * w.N * 4), w: w.w, N: w.N, dt: ID[w.dt]! })),
          x.subarray(0, t * K),
          t,
          K,
          parts,
          counter,
        );
        ws.forEach((w, i) => {
          const [one] = runKq(m, [{ out: m.alloc(t * w.N * 4), w: w.w, N: w.N, dt: ID[w.dt]! }], x.subarray(0, t * K), t, K, 1, false);
          sameBits(all[i]!, one!, `${w.dt} #${i} T=${t} parts=${parts}`);
        });
      }
    }
  });
}
