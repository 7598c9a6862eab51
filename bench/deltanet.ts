// Gated DeltaNet kernels at Qwen3.5-0.8B's shapes (nk = nv = 16, dk = dv = 128, conv channels
// C = 6144, K = 4): ms per layer for deltaNet and ssmConv, decode (one row) and prefill.
//   node dist/bench/deltanet.js [--threads 1,2] [--rows 512,4096] [--sweep] [--simd (plain SIMD build)]
// Decode is timed twice: "hot" reuses one state (it stays in cache), "cold" cycles through 18
// layers' states (18 MiB), as a decode token does. --sweep times the recurrent and chunked forms
// for 1..256 rows of one sequence (to place the threshold between them).
import { parseArgs } from 'node:util';
import { WasmBackend } from '../src/backend/wasm.js';
import type { DeltaNetDims, RecurrentSpan } from '../src/backend/backend.js';

const D: DeltaNetDims = { nk: 16, nv: 16, dk: 128, dv: 128, tiled: true };
const CQ = 2 * D.nk * D.dk + D.nv * D.dv,
  K = 4,
  LAYERS = 18;

/** Median (and fastest) ms of fn over enough runs to take ~0.3 s: on a busy machine the fastest run
 *  is the better measure of the kernel, the median of what a caller sees. */
function time(fn: () => void, minMs = 300): { med: number; min: number } {
  fn();
  const runs: number[] = [];
  const end = performance.now() + minMs;
  while (runs.length < 5 || (performance.now() < end && runs.length < 2000)) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  return { med: runs[runs.length >> 1]!, min: runs[0]! };
}

function rand(a: Float32Array, scale: number, offset = 0): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = (Math.random() * 2 - 1) * scale + offset;
  return a;
}

function setup(be: WasmBackend, T: number) {
  const qkv = rand(be.alloc(T * CQ), 1, 0.3),
    a = rand(be.alloc(T * D.nv), 1),
    b = rand(be.alloc(T * D.nv), 2);
  const A = rand(be.alloc(D.nv), 1, -2),
    dt = rand(be.alloc(D.nv), 0.5),
    w = rand(be.alloc(CQ * K), 0.5);
  const out = be.alloc(T * D.nv * D.dv),
    cout = be.alloc(T * CQ);
  const spans: RecurrentSpan[] = Array.from({ length: LAYERS }, () => ({
    rows: Int32Array.from({ length: T }, (_, i) => i),
    conv: be.alloc((K - 1) * CQ).fill(0),
    state: be.alloc(D.nv * D.dk * D.dv).fill(0),
  }));
  return {
    delta: (l = 0) => be.deltaNet(out, qkv, a, b, A, dt, [spans[l]!], D, 1e-6),
    conv: (l = 0) => be.ssmConv(cout, qkv, w, [spans[l]!], CQ, K),
  };
}

function main(): void {
  const { values } = parseArgs({ options: { threads: { type: 'string', default: '1,2' }, rows: { type: 'string', default: '512,4096' }, sweep: { type: 'boolean' }, simd: { type: 'boolean' } } });
  for (const threads of values.threads!.split(',').map(Number)) {
    const be = new WasmBackend({ threads, relaxed: !values.simd });
    const f = (t: { med: number; min: number }, per = 1, unit = 'ms') => `${(t.med / per).toFixed(3)} ${unit} (min ${(t.min / per).toFixed(3)})`;
    const one = setup(be, 1);
    // warm-up: the workers compile the module with the optimising tier as they start
    for (const end = performance.now() + 1000; performance.now() < end; ) one.delta();
    let l = 0;
    const cold = (fn: (l: number) => void) => time(() => fn((l = (l + 1) % LAYERS)));
    console.log(`${be.name} decode T=1, per layer: deltaNet hot ${f(time(() => one.delta()))}, cold ${f(cold(one.delta))}; ssmConv hot ${f(time(() => one.conv()))}, cold ${f(cold(one.conv))}`);
    for (const T of values.rows!.split(',').map(Number)) {
      const p = setup(be, T);
      const dn = time(() => p.delta(), 1000),
        cv = time(() => p.conv(), 1000);
      console.log(`${be.name} prefill T=${T}, per layer: deltaNet ${f(dn)} = ${f(dn, T / 1000, 'µs/row')}; ssmConv ${f(cv)}`);
    }
    if (values.sweep) {
      const chunkMin = be.deltaChunkMin;
      for (const T of [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256]) {
        const p = setup(be, T);
        be.deltaChunkMin = 1 << 30;
        const rec = time(() => p.delta());
        be.deltaChunkMin = 1;
        const ch = time(() => p.delta());
        be.deltaChunkMin = chunkMin;
        console.log(`${be.name} rows ${String(T).padStart(4)}: recurrent ${f(rec, T / 1000, 'µs/row')}, chunked ${f(ch, T / 1000, 'µs/row')}`);
      }
    }
    be.dispose();
  }
}

main();
