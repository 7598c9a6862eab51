// Backend.matmulExperts (ggml's mul_mat_id): every slot's row equals the dense product of its
// expert's matrix (the reference backend: within the activation rounding; the WebAssembly backend:
// bit for bit the same as that expert's matrix alone, one token), whatever T, k, the other slots'
// experts and the thread count; shared and per-slot inputs; weights in another WebAssembly memory;
// bad ids and shapes are errors.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD, type Backend, type Weight } from '../../src/backend/backend.js';
import { expertView } from '../../src/backend/experts.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import type { DType } from '../../src/formats/dtype.js';
import { quantize } from '../../src/formats/quant/index.js';
import { rng, sameBits } from '../helpers.js';

const rnd = rng(4242);
const wasm = [new WasmBackend({ threads: 1, spinMs: 0.05, poison: true }), new WasmBackend({ threads: 3, grain: 1e-9, spinMs: 0.05, poison: true })];
after(() => wasm.forEach((b) => b.dispose()));

const E = 6;
// [N, K] per expert: ragged N, K a multiple of each type's block
const SHAPES: Partial<Record<DType, [number, number]>> = { F32: [19, 40], F16: [19, 40], BF16: [11, 64], Q8_0: [13, 96], Q4_0: [9, 64], Q4_K: [7, 256], Q6_K: [5, 256] };

/** A stack of E random [N, K] matrices in `dtype`, stored on `be` (same values for the same seed). */
function stack(be: Backend, dtype: DType, N: number, K: number, seed: number): Weight {
  const r = rng(seed),
    src = Float32Array.from({ length: E * N * K }, () => (r() * 2 - 1) * 0.5);
  const w = be.weight(dtype, [E, N, K]);
  w.bytes.set(dtype === 'F32' ? new Uint8Array(src.buffer) : quantize(dtype, src, E * N * K));
  return w;
}

/** ids [T*k]: k distinct experts per token, drawn at random. */
function pick(T: number, k: number): Int32Array {
  const ids = new Int32Array(T * k);
  for (let t = 0; t < T; t++) {
    const all = Array.from({ length: E }, (_, e) => e).sort(() => rnd() - 0.5);
    ids.set(all.slice(0, k), t * k);
  }
  return ids;
}

const floats = (be: Backend, n: number, f: () => number) => {
  const a = be.alloc(n);
  for (let i = 0; i < n; i++) a[i] = f();
  return a;
};

for (const be of wasm)
  for (const [dtype, [N, K]] of Object.entries(SHAPES) as [DType, [number, number]][]) {
    test(`${be.name} matmulExperts ${dtype}: each slot is bit-identical to its expert's product alone, for any T and k`, () => {
      const w1 = stack(be, dtype, N, K, 1),
        w2 = stack(be, dtype, N + 3, K, 2);
      for (const [T, k] of [
        [1, 1],
        [1, 3],
        [2, 2],
        [5, 3],
        [9, E],
      ] as const) {
        const ids = pick(T, k),
          S = T * k;
        const x = floats(be, T * K, () => rnd() * 2 - 1);
        const o1 = be.alloc(S * N),
          o2 = be.alloc(S * (N + 3));
        be.matmulExperts([o1, o2], x, [w1, w2], ids, T, k);
        // per-slot input (the down projection's case)
        const xs = floats(be, S * K, () => rnd() * 2 - 1),
          os = be.alloc(S * N);
        be.matmulExperts([os], xs, [w1], ids, T, k, true);
        for (let s = 0; s < S; s++) {
          const e = ids[s]!,
            t = Math.floor(s / k);
          const alone = be.alloc(N + 3);
          be.matmul(alone.subarray(0, N), x.subarray(t * K, (t + 1) * K), expertView(w1, e), 1);
          sameBits(o1.subarray(s * N, (s + 1) * N), alone.subarray(0, N), `T=${T} k=${k} slot ${s} (expert ${e}) first weight`);
          be.matmul(alone, x.subarray(t * K, (t + 1) * K), expertView(w2, e), 1);
          sameBits(o2.subarray(s * (N + 3), (s + 1) * (N + 3)), alone, `T=${T} k=${k} slot ${s} second weight`);
          be.matmul(alone.subarray(0, N), xs.subarray(s * K, (s + 1) * K), expertView(w1, e), 1);
          sameBits(os.subarray(s * N, (s + 1) * N), alone.subarray(0, N), `T=${T} k=${k} slot ${s} per-slot input`);
        }
      }
    });
  }

test('matmulExperts: the WebAssembly backend agrees with the reference backend (the oracle)', () => {
  const ref = new ReferenceBackend(),
    be = wasm[1]!;
  for (const [dtype, [N, K]] of Object.entries(SHAPES) as [DType, [number, number]][]) {
    const T = 7,
      k = 2,
      ids = pick(T, k);
    const wr = stack(ref, dtype, N, K, 3),
      ww = stack(be, dtype, N, K, 3);
    const xr = floats(ref, T * k * K, () => rnd() * 2 - 1),
      xw = be.alloc(xr.length);
    xw.set(xr);
    for (const perSlot of [false, true]) {
      const or = ref.alloc(T * k * N),
        ow = be.alloc(T * k * N);
      ref.matmulExperts([or], xr, [wr], ids, T, k, perSlot);
      be.matmulExperts([ow], xw, [ww], ids, T, k, perSlot);
      // int8 activations (Q8_0 / K-quant products, as ggml): ~1e-2 of a row's scale
      const tol = dtype.startsWith('F') || dtype === 'BF16' ? 1e-5 : 3e-2;
      let worst = 0,
        scale = 0;
      for (let i = 0; i < or.length; i++) {
        worst = Math.max(worst, Math.abs(or[i]! - ow[i]!));
        scale = Math.max(scale, Math.abs(or[i]!));
      }
      assert.ok(worst <= tol * scale, `${dtype} perSlot=${perSlot}: max diff ${worst} (scale ${scale})`);
    }
  }
});

test('matmulExperts: weights in another WebAssembly memory give the same bits as in one', () => {
  const one = wasm[0]!;
  const split = new WasmBackend({ threads: 1, spinMs: 0.05, poison: true, shardBytes: 1 });
  try {
    const [N, K] = SHAPES.Q8_0!;
    split.place(HEAD, 1);
    const T = 4,
      k = 2,
      ids = pick(T, k);
    const x = floats(split, T * K, () => rnd() * 2 - 1);
    split.place(0, 1e6);
    stack(split, 'Q8_0', N, K, 6); // layer 0's weights fill memory 0's budget ...
    split.place(1, 1e6); // ... so layer 1's go to a new memory
    const w = stack(split, 'Q8_0', N, K, 5);
    assert.notEqual(split.shardOf(w.bytes), split.shardOf(x));
    split.place(HEAD);
    const out = split.alloc(T * k * N);
    split.matmulExperts([out], x, [w], ids, T, k);
    const w1 = stack(one, 'Q8_0', N, K, 5),
      x1 = one.alloc(T * K),
      o1 = one.alloc(T * k * N);
    x1.set(x);
    one.matmulExperts([o1], x1, [w1], ids, T, k);
    sameBits(out, o1, 'split vs one memory');
  } finally {
    split.dispose();
  }
});

test('matmulExperts: an expert id out of range, or operands of the wrong shape, are errors', () => {
  for (const be of [new ReferenceBackend(), wasm[0]!] as Backend[]) {
    const w = stack(be, 'F32', 4, 8, 9),
      x = floats(be, 2 * 8, () => 1),
      out = be.alloc(2 * 2 * 4);
    assert.throws(() => be.matmulExperts([out], x, [w], Int32Array.of(0, 6, 1, 2), 2, 2), /expert id 6 at slot 1 is outside 0\.\.5/);
    assert.throws(() => be.matmulExperts([out], x, [w], Int32Array.of(0, -1, 1, 2), 2, 2), /expert id -1/);
    assert.throws(() => be.matmulExperts([out], x, [w], Int32Array.of(0, 1, 1, 2), 2, 2, true), /input holds 16 floats, needs 32/);
    const flat: Weight = { dtype: 'F32', shape: [24, 8], bytes: w.bytes };
    assert.throws(() => be.matmulExperts([out], x, [flat], Int32Array.of(0, 1, 1, 2), 2, 2), /weight 0 has shape \[24, 8\]/);
  }
});

// WasmBackend.matmulRows (a decode token's per-slot expert products in one dispatch): matrix i
// reads input row floor(i / group); each output is bit-identical to that matrix's product alone,
// for the int8 kinds (legacy with and without a min, K-quants) with rows handed out through the
// shared counter (3 threads, N past a chunk) and for the kinds it runs one by one.
for (const be of wasm)
  for (const [dtype, K] of [
    ['Q8_0', 96],
    ['Q4_1', 64],
    ['Q5_0', 64],
    ['Q4_K', 256],
    ['Q6_K', 512],
    ['F16', 40],
    ['F32', 40],
  ] as [DType, number][]) {
    test(`${be.name} matmulRows ${dtype}: one input row per group of matrices, each output its product alone`, () => {
      const Ns = [300, 7, 520, 33];
      const ws = Ns.map((N, i) => {
        const r = rng(70 + i),
          src = Float32Array.from({ length: N * K }, () => (r() * 2 - 1) * 0.5);
        const w = be.weight(dtype, [N, K]);
        w.bytes.set(dtype === 'F32' ? new Uint8Array(src.buffer) : quantize(dtype, src, N * K));
        return w;
      });
      for (const group of [1, 2, 4]) {
        const R = Ns.length / group,
          x = floats(be, R * K, () => rnd() * 2 - 1);
        const outs = Ns.map((N) => be.alloc(N));
        (be as WasmBackend).matmulRows(outs, x, ws, group);
        ws.forEach((w, i) => {
          const alone = be.alloc(Ns[i]!),
            r = Math.floor(i / group);
          be.matmul(alone, x.subarray(r * K, (r + 1) * K), w, 1);
          sameBits(outs[i]!, alone, `group ${group} matrix ${i}`);
        });
      }
      assert.throws(() => (be as WasmBackend).matmulRows([be.alloc(300)], be.alloc(K), [ws[0]!, ws[1]!], 3), /groups of 3/);
    });
  }

// WasmBackend.matmulSegments (a prefill's expert products in one dispatch): matrix i on its own
// rows of x; each output is bit-identical to that matrix's product on those rows alone, for
// segments of 0, 1, 2 and more rows, overlapping or not; also on plain SIMD and on the int16 tile.
const variants = [new WasmBackend({ threads: 3, grain: 1e-9, relaxed: false, spinMs: 0.05, poison: true }), new WasmBackend({ threads: 2, grain: 1e-9, u8dot: false, spinMs: 0.05, poison: true })];
after(() => variants.forEach((b) => b.dispose()));
for (const be of [...wasm, ...variants])
  for (const [dtype, K] of [
    ['Q8_0', 96],
    ['Q4_1', 64],
    ['Q4_K', 256],
    ['Q6_K', 512],
    ['F32', 40],
  ] as [DType, number][]) {
    test(`${be.name} matmulSegments ${dtype}: each matrix on its rows, each output its product alone`, () => {
      const Ns = [300, 7, 130, 33, 64];
      const ws = Ns.map((N, i) => {
        const r = rng(90 + i),
          src = Float32Array.from({ length: N * K }, () => (r() * 2 - 1) * 0.5);
        const w = be.weight(dtype, [N, K]);
        w.bytes.set(dtype === 'F32' ? new Uint8Array(src.buffer) : quantize(dtype, src, N * K));
        return w;
      });
      const R = 9,
        x = floats(be, R * K, () => rnd() * 2 - 1);
      for (const seg of [
        [0, 3, 3, 1, 4, 5, 0, 0, 4, 2],
        [0, 9, 8, 1, 2, 2, 2, 2, 0, 1],
      ]) {
        const outs = Ns.map((N, i) => be.alloc(Math.max(1, seg[2 * i + 1]!) * N));
        (be as WasmBackend).matmulSegments(outs, x, ws, Int32Array.from(seg), R);
        ws.forEach((w, i) => {
          const r0 = seg[2 * i]!,
            n = seg[2 * i + 1]!;
          if (n === 0) return;
          const alone = be.alloc(n * Ns[i]!);
          be.matmul(alone, x.subarray(r0 * K, (r0 + n) * K), w, n);
          sameBits(outs[i]!.subarray(0, n * Ns[i]!), alone, `segments ${seg} matrix ${i}`);
        });
      }
      assert.throws(() => (be as WasmBackend).matmulSegments([be.alloc(300)], x, [ws[0]!], Int32Array.of(8, 2), R), /outside 9 rows/);
    });
  }
