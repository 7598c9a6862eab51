// The Qwen3.5 ops of the WebAssembly backend (partial rope, sigmoidMul, ssmConv, deltaNet) against
// the reference backend, on random inputs. The reference accumulates in f64, the kernels in f32.
// Tolerances:
//   rope (rotated dims), sigmoidMul: 1e-5 relative (+1e-6), as the other elementwise ops; the
//     dims rope leaves alone are compared exactly.
//   ssmConv: |d| <= 1e-5 * sum_i |w_i x_i| + 1e-6 (four f32 products and a SiLU), the conv state
//     exactly (it is a copy of inputs).
//   deltaNet: |d| <= 4e-6 * (max |v| + max |S0|) for outputs and states (S0: the states before the
//     call; outputs run at 0.08-0.4 of that scale). Per row, the kernel's S^T k, S^T q and l2 norms
//     are f32 sums of dk terms (relative error ~ sqrt(dk) * 6e-8); the delta rule contracts
//     (beta <= 1, |k| = 1, decay <= 1), so errors do not grow with the row count. The chunked form
//     (cumulative log decays, a 64-row triangular solve) gives the same quantities in another
//     order. Measured at most 2.5e-7 of that scale over 300 rows, nearly parallel keys included
//     (the worst-conditioned solve): the bound leaves 16x.
// Beyond agreement: a sequence's outputs and state are bit-identical whether it runs alone or
// batched with others, and for 1 or 3 threads.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { DELTA_CHUNK_MIN, type WasmBackend } from '../../src/backend/wasm.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import type { DeltaNetDims, RecurrentSpan } from '../../src/backend/backend.js';
import { rng, wasmVariants } from '../helpers.js';

const ref = new ReferenceBackend();
const backends = wasmVariants([1, 3]);
after(() => backends.forEach((b) => b.dispose()));

const rand = rng(2024);
const rnd = () => rand() * 2 - 1;
function fill(a: Float32Array, scale = 1, offset = 0): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = rnd() * scale + offset;
  return a;
}
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: (i: number) => number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol(i), `${what}[${i}]: ${a[i]} vs ${b[i]} (tol ${tol(i)})`);
}

/** Rows 0..T-1 dealt to sequences of the given lengths in a random interleaving (each in order). */
function interleave(lens: number[]): { T: number; rows: Int32Array[] } {
  const ids = lens.flatMap((n, s) => Array<number>(n).fill(s));
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const rows = lens.map(() => [] as number[]);
  ids.forEach((s, t) => rows[s]!.push(t));
  return { T: ids.length, rows: rows.map((r) => Int32Array.from(r)) };
}

for (const be of backends) {
  test(`${be.name} rope with partial rotation: rotated dims agree, the rest untouched`, () => {
    for (const [T, H, Dh, nRot] of [
      [1, 1, 6, 2],
      [3, 2, 64, 16],
      [4, 3, 256, 64],
      [2, 2, 10, 4],
      [5, 2, 128, 128],
    ] as const) {
      const x = fill(be.alloc(T * H * Dh)),
        e = Float32Array.from(x);
      const pos = Int32Array.from({ length: T }, (_, i) => [0, 1, 17, 1000, 70000][i]!);
      be.rope(x, pos, T, H, Dh, 1e7, nRot);
      ref.rope(e, pos, T, H, Dh, 1e7, nRot);
      close(x, e, (i) => (i % Dh < nRot ? 1e-5 * Math.abs(e[i]!) + 1e-6 : 0), `rope ${T}x${H}x${Dh}/${nRot}`);
      // full rotation right after, on the same positions: the cached table must not be reused
      const y = fill(be.alloc(T * H * Dh)),
        f = Float32Array.from(y);
      be.rope(y, pos, T, H, Dh, 1e7);
      ref.rope(f, pos, T, H, Dh, 1e7);
      close(y, f, (i) => 1e-5 * Math.abs(f[i]!) + 1e-6, `rope full after partial ${Dh}`);
    }
  });

  test(`${be.name} sigmoidMul: odd sizes, in place`, () => {
    for (const n of [1, 5, 17, 1000, 4099]) {
      const g = fill(be.alloc(n), 12),
        x = fill(be.alloc(n), 3),
        o = be.alloc(n),
        e = new Float32Array(n);
      ref.sigmoidMul(e, Float32Array.from(g), Float32Array.from(x), n);
      be.sigmoidMul(o, g, x, n);
      close(o, e, (i) => 1e-5 * Math.abs(e[i]!) + 1e-6, `sigmoidMul ${n}`);
      be.sigmoidMul(x, g, x, n);
      close(x, e, (i) => 1e-5 * Math.abs(e[i]!) + 1e-6, `sigmoidMul in place ${n}`);
    }
  });

  test(`${be.name} ssmConv: interleaved sequences, states carried across calls, K = 4, 3, 2`, () => {
    for (const [C, K] of [
      [1, 4],
      [7, 4],
      [64, 4],
      [130, 4],
      [6, 3],
      [9, 2],
    ] as const) {
      const nseq = 3;
      const w = fill(be.alloc(C * K)),
        wr = Float32Array.from(w);
      const conv = Array.from({ length: nseq }, () => fill(be.alloc((K - 1) * C), 2));
      const convR = conv.map((c) => Float32Array.from(c));
      for (const lens of [
        [1, 5, 2],
        [9, 0, 1],
        [1, 1, 1],
        [40, 3, 17],
      ]) {
        const { T, rows } = interleave(lens);
        const x = fill(be.alloc(T * C), 2),
          out = be.alloc(T * C),
          e = new Float32Array(T * C);
        const xr = Float32Array.from(x),
          before = convR.map((c) => Float32Array.from(c));
        be.ssmConv(
          out,
          x,
          w,
          rows.map((r, s) => ({ rows: r, conv: conv[s]!, state: conv[s]! })),
          C,
          K,
        );
        ref.ssmConv(
          e,
          xr,
          wr,
          rows.map((r, s) => ({ rows: r, conv: convR[s]!, state: convR[s]! })),
          C,
          K,
        );
        // the rounding scale of each output: sum over the taps of |w x|
        const bound = new Float32Array(T * C);
        rows.forEach((rs, s) => {
          const xpad = (r: number, c: number) => (r < K - 1 ? before[s]![r * C + c]! : xr[rs[r - (K - 1)]! * C + c]!);
          rs.forEach((t, r) => {
            for (let c = 0; c < C; c++) {
              let S = 0;
              for (let i = 0; i < K; i++) S += Math.abs(wr[c * K + i]! * xpad(r + i, c));
              bound[t * C + c] = S;
            }
          });
        });
        close(out, e, (i) => 1e-5 * bound[i]! + 1e-6, `ssmConv C=${C} K=${K} lens=${lens}`);
        conv.forEach((c, s) => assert.deepEqual(Array.from(c), Array.from(convR[s]!), `conv state ${s}`));
      }
    }
  });

  const SHAPES: DeltaNetDims[] = [
    { nk: 1, nv: 1, dk: 4, dv: 4, tiled: false },
    { nk: 2, nv: 4, dk: 32, dv: 32, tiled: true },
    { nk: 2, nv: 4, dk: 32, dv: 32, tiled: false },
    { nk: 2, nv: 2, dk: 128, dv: 128, tiled: false },
    { nk: 1, nv: 3, dk: 8, dv: 12, tiled: false }, // dv: four-column tiles only
    { nk: 2, nv: 6, dk: 5, dv: 7, tiled: true }, // odd sizes: scalar tails
  ];
  const CM = DELTA_CHUNK_MIN;
  for (const d of SHAPES) {
    test(`${be.name} deltaNet nk=${d.nk} nv=${d.nv} dk=${d.dk} dv=${d.dv} ${d.tiled ? 'tiled' : 'grouped'}: interleaved sequences, states carried, decode after prefill`, () => {
      const layer = dnLayer(be, d);
      const states = Array.from({ length: 3 }, (_, s) => fill(be.alloc(d.nv * d.dk * d.dv), s === 0 ? 0 : 0.5));
      const statesR = states.map((x) => Float32Array.from(x));
      const big =
        d.dk * d.dv >= 1024
          ? [
              [300, 1, 0],
              [65, 2, CM + 1],
            ]
          : [
              [300, 1, 0],
              [CM - 1, CM, CM + 1],
              [64, 130, 5],
            ];
      for (const lens of [[1, 1, 1], [3, 0, 2], [1, 1, 1], ...big, [1, 1, 1], [2, 1, 1]]) {
        dnCheck(be, d, layer, states, statesR, lens, `lens ${lens}`);
      }
      const slow: Layer = { ...layer, A: be.alloc(d.nv).fill(-0.02), Ar: new Float32Array(d.nv).fill(-0.02) };
      for (const lens of [
        [200, 1, CM + 5],
        [1, 1, 1],
      ])
        dnCheck(be, d, slow, states, statesR, lens, `hard lens ${lens}`, true);
    });
  }

  test(`${be.name} deltaNet: a sequence's result is the same bits alone, batched, and on 1 or 3 threads`, () => {
    const d: DeltaNetDims = { nk: 2, nv: 4, dk: 32, dv: 32, tiled: true };
    const r = rng(77);
    const f = (a: Float32Array, scale: number, offset = 0) => {
      for (let i = 0; i < a.length; i++) a[i] = (r() * 2 - 1) * scale + offset;
      return a;
    };
    const C = 2 * d.nk * d.dk + d.nv * d.dv;
    const A = f(be.alloc(d.nv), 2, -2.1),
      dt = f(be.alloc(d.nv), 1);
    const got: Float32Array[] = [];
    for (const n of [1, 3, CM - 1, CM, 100]) {
      const S0 = f(new Float32Array(d.nv * d.dk * d.dv), 0.5);
      const x = { qkv: f(new Float32Array(n * C), 1), a: f(new Float32Array(n * d.nv), 2), b: f(new Float32Array(n * d.nv), 3) };
      // alone
      const run = (lens: number[], rowsOf: Int32Array[], T: number) => {
        const qkv = be.alloc(T * C).fill(0.25),
          a = be.alloc(T * d.nv).fill(0.5),
          b = be.alloc(T * d.nv).fill(-0.5),
          out = be.alloc(T * d.nv * d.dv);
        rowsOf[0]!.forEach((t, i) => {
          qkv.set(x.qkv.subarray(i * C, (i + 1) * C), t * C);
          a.set(x.a.subarray(i * d.nv, (i + 1) * d.nv), t * d.nv);
          b.set(x.b.subarray(i * d.nv, (i + 1) * d.nv), t * d.nv);
        });
        const states = lens.map((_, s) => (s === 0 ? be.alloc(S0.length).fill(0) : be.alloc(S0.length).fill(0.1)));
        states[0]!.set(S0);
        be.deltaNet(
          out,
          qkv,
          a,
          b,
          A,
          dt,
          rowsOf.map((rows, s) => ({ rows, conv: states[s]!, state: states[s]! })),
          d,
          1e-6,
        );
        const o = new Float32Array(n * d.nv * d.dv + S0.length);
        rowsOf[0]!.forEach((t, i) => o.set(out.subarray(t * d.nv * d.dv, (t + 1) * d.nv * d.dv), i * d.nv * d.dv));
        o.set(states[0]!, n * d.nv * d.dv);
        return o;
      };
      const alone = run([n], [Int32Array.from({ length: n }, (_, i) => i)], n);
      const { T, rows } = interleave([n, 7, CM + 3]);
      const batched = run([n, 7, CM + 3], rows, T);
      assert.ok(
        alone.every((v, i) => Object.is(v, batched[i])),
        `n=${n}: alone and batched differ`,
      );
      got.push(alone);
    }
    const key = `${be.relaxed}`;
    const prev = bitsByThreads.get(key);
    if (prev)
      prev.forEach((p, i) =>
        assert.ok(
          p.every((v, j) => Object.is(v, got[i]![j])),
          `case ${i}: threads ${be.threads} differ from the first backend's`,
        ),
      );
    else bitsByThreads.set(key, got);
  });
}

const bitsByThreads = new Map<string, Float32Array[]>();

interface Layer {
  A: Float32Array;
  dtBias: Float32Array;
  Ar: Float32Array;
  dtR: Float32Array;
}

function dnLayer(be: WasmBackend, d: DeltaNetDims): Layer {
  // A = -exp(A_log) over a wide range: decays per row from ~0.99 to ~1e-3
  const A = be.alloc(d.nv),
    dtBias = fill(be.alloc(d.nv), 1);
  for (let j = 0; j < d.nv; j++) A[j] = -Math.exp(rnd() * 2.5);
  return { A, dtBias, Ar: Float32Array.from(A), dtR: Float32Array.from(dtBias) };
}

/** One deltaNet call on both backends, sequences of the given lengths interleaved; checks outputs and states. */
function dnCheck(be: WasmBackend, d: DeltaNetDims, L: Layer, states: Float32Array[], statesR: Float32Array[], lens: number[], what: string, hard = false): void {
  const { T, rows } = interleave(lens);
  const C = 2 * d.nk * d.dk + d.nv * d.dv;
  // hard: keys nearly parallel (|cos| ~ 0.9) and beta near 1, the worst conditioning of (I + L)
  const qkv = hard ? fill(be.alloc(T * C), 0.5, 1) : fill(be.alloc(T * C), 1.5, 0.3);
  const a = fill(be.alloc(T * d.nv), 2),
    b = hard ? fill(be.alloc(T * d.nv), 1, 4) : fill(be.alloc(T * d.nv), 3);
  const out = be.alloc(T * d.nv * d.dv),
    e = new Float32Array(T * d.nv * d.dv);
  let vmax = 0;
  for (let t = 0; t < T; t++) vmax = Math.max(vmax, maxAbs(qkv.subarray(t * C + 2 * d.nk * d.dk, (t + 1) * C)));
  const scale = vmax + Math.max(...statesR.map(maxAbs));
  const spans = (st: Float32Array[]): RecurrentSpan[] => rows.map((r, s) => ({ rows: r, conv: st[s]!, state: st[s]! }));
  be.deltaNet(out, qkv, a, b, L.A, L.dtBias, spans(states), d, 1e-6);
  ref.deltaNet(e, Float32Array.from(qkv), Float32Array.from(a), Float32Array.from(b), L.Ar, L.dtR, spans(statesR), d, 1e-6);
  const tol = 4e-6 * scale;
  let worst = 0;
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(out[i]! - e[i]!) / scale);
  states.forEach((st, s) => {
    for (let i = 0; i < st.length; i++) worst = Math.max(worst, Math.abs(st[i]! - statesR[s]![i]!) / scale);
  });
  if (process.env.DN_ERR) console.log(`${be.name} ${JSON.stringify(d)} ${what}: max |out| / scale ${(maxAbs(e) / scale).toFixed(3)}, max err / scale ${worst.toExponential(2)}`);
  close(out, e, () => tol, `deltaNet out ${what}`);
  states.forEach((st, s) => close(st, statesR[s]!, () => tol, `deltaNet state ${s} ${what}`));
  // keep the two sides' states identical, so that each call's error is measured on its own
  states.forEach((st, s) => st.set(statesR[s]!));
}
