// Small-batch products (a speculative verify pass: 2-8 rows of one sequence) on the Qwen2.5-0.5B
// shapes, per stored type and thread count: ms per product for T = 1..8 rows, the ratio to T = 1,
// and the matrix products of one whole forward pass (24 layers + the output head) at each T.
//   node dist/bench/smallbatch.js [--threads 1,2] [--types BF16,F16,Q8_0,Q4_0] [--tokens 1,2,3,4,5,8] [--rounds 7]
//        [--shapes q/o,k/v,gate/up,down,head] [--before]
// --cpu: CPU time instead of wall time (use with --threads 1 on a busy machine).
// --before: each product also with the small-batch kernels off (WasmBackend smallBatch: false).
// 'pass' is the sum over one forward pass of the 0.5B shape (uses per pass x ms).
// The T values alternate within each round (the machine may be shared: ratios within one run are
// the figures), and each figure is the median over rounds of a round's mean ms per call.
import { parseArgs } from 'node:util';
import * as os from 'node:os';
import { WasmBackend } from '../src/backend/wasm.js';
import { DTYPES, type DType } from '../src/formats/dtype.js';
import { quantize } from '../src/formats/quant/index.js';

// [name, N, K, uses per forward pass]
const SHAPES: [string, number, number, number][] = [
  ['q/o', 896, 896, 48],
  ['k/v', 128, 896, 48],
  ['gate/up', 4864, 896, 48],
  ['down', 896, 4864, 24],
  ['head', 151936, 896, 1],
];

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;

function main(): void {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: '1,2' },
      types: { type: 'string', default: 'BF16,F16,Q8_0,Q4_0' },
      tokens: { type: 'string', default: '1,2,3,4,5,8' },
      rounds: { type: 'string', default: '7' },
      shapes: { type: 'string', default: SHAPES.map((s) => s[0]).join(',') },
      before: { type: 'boolean' },
      cpu: { type: 'boolean' },
    },
  });
  // --cpu: the process's CPU time (ms) instead of wall time: with one thread, what the kernel costs
  // however often the host deschedules it (a busy shared machine)
  const clock = values.cpu
    ? () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1000;
      }
    : () => performance.now();
  const types = values.types!.split(',') as DType[];
  const bad = types.filter((t) => !Object.hasOwn(DTYPES, t));
  if (bad.length) throw new Error(`--types: unknown type ${bad.join(', ')}`);
  const Ts = values.tokens!.split(',').map(Number),
    rounds = Number(values.rounds),
    shapes = SHAPES.filter((s) => values.shapes!.split(',').includes(s[0]));
  if (Ts[0] !== 1) throw new Error('--tokens: the first must be 1 (the ratios are to it)');
  process.stdout.write(
    `${os.cpus()[0]?.model ?? '?'}, ${process.version}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
  for (const threads of values.threads!.split(',').map(Number)) {
    // --before: the same products with the small-batch kernels off (the way before), alternating
    const bes = [new WasmBackend({ threads }), ...(values.before ? [new WasmBackend({ threads, smallBatch: false })] : [])];
    process.stdout.write(`\n${bes.map((b) => b.name).join(' vs ')}\n${'type'.padEnd(5)} ${'shape'.padEnd(20)} ${Ts.map((t) => `T=${t} ms`.padStart(10)).join('')}  ratio to T=1\n`);
    for (const dtype of types) {
      const pass = bes.map(() => Ts.map(() => 0));
      for (const [name, N, K0, uses] of shapes) {
        const K = dtype.endsWith('_K') ? Math.ceil(K0 / 256) * 256 : K0; // K-quants: whole blocks of 256 (as bench/run.ts)
        let seed = 11;
        const src = Float32Array.from({ length: N * K }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.05);
        const bytes = quantize(dtype, src, N * K),
          Tmax = Math.max(...Ts);
        const ops = bes.map((be) => {
          const w = be.weight(dtype, [N, K]);
          w.bytes.set(bytes);
          const x = be.alloc(Tmax * K),
            out = be.alloc(Tmax * N);
          for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
          return (T: number) => be.matmul(out, x, w, T);
        });
        const calls = Math.max(1, Math.round(2e7 / (N * K))); // ~20 M weights a sample
        const samples = bes.map(() => Ts.map(() => [] as number[]));
        const jobs = bes.flatMap((_, b) => Ts.map((_, i) => [b, i] as const));
        for (let r = 0; r <= rounds; r++) {
          for (let j = 0; j < jobs.length; j++) {
            const [b, i] = jobs[(j + r) % jobs.length]!; // rotate the order each round
            const t0 = clock();
            for (let c = 0; c < calls; c++) ops[b]!(Ts[i]!);
            if (r > 0) samples[b]![i]!.push((clock() - t0) / calls); // round 0 warms up
          }
        }
        samples.forEach((sb, b) => {
          const ms = sb.map(median);
          ms.forEach((m, i) => (pass[b]![i]! += m * uses));
          const label = `${name} ${N}x${K}${b ? ' before' : ''}`;
          process.stdout.write(`${dtype.padEnd(5)} ${label.padEnd(20)} ${ms.map((m) => m.toFixed(3).padStart(10)).join('')}  ${ms.map((m) => (m / ms[0]!).toFixed(2)).join(' ')}\n`);
        });
      }
      if (shapes.length === SHAPES.length)
        pass.forEach((p, b) =>
          process.stdout.write(`${dtype.padEnd(5)} ${`pass${b ? ' before' : ''}`.padEnd(20)} ${p.map((m) => m.toFixed(1).padStart(10)).join('')}  ${p.map((m) => (m / p[0]!).toFixed(2)).join(' ')}\n`),
        );
    }
    bes.forEach((be) => be.dispose?.());
  }
}

try {
  main();
} catch (e) {
  process.stderr.write(`smallbatch: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
