// Kernel benchmark (`npm run bench`): the matrix products of the Qwen2.5-0.5B shape on the wasm
// backend, per stored type, one token (decode: GB/s of weights read) and 128 tokens (prefill:
// GMAC/s), plus the tokenizer's figures. Random weights; the end-to-end model figures against
// llama.cpp come from `npm run bench:peer -- --model <file.gguf>`.
//   node dist/bench/run.js [--threads 2] [--types Q8_0,F16] [--tokens 128] [--json] [--f32-kquant]
// --f32-kquant: K-quants decoded to f32 (mm_rows), the way before the int8 kernels, to compare.
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { WasmBackend } from '../src/backend/wasm.js';
import type { Weight } from '../src/backend/backend.js';
import { DTYPES, tensorBytes, type DType } from '../src/formats/dtype.js';
import { quantize } from '../src/formats/quant/index.js';

const SHAPES: [string, number, number][] = [
  ['q/o 896x896', 896, 896],
  ['gate/up 4864x896', 4864, 896],
  ['down 896x4864', 896, 4864],
];

function randomWeight(be: WasmBackend, dtype: DType, N: number, K: number): Weight {
  let seed = 7;
  const src = new Float32Array(N * K).map(() => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.04);
  const w = be.weight(dtype, [N, K]);
  w.bytes.set(dtype === 'F32' ? new Uint8Array(src.buffer) : quantize(dtype, src, N * K));
  return w;
}

/** Median milliseconds of fn over enough runs to take ~0.3 s. */
function time(fn: () => void): number {
  fn();
  const runs: number[] = [];
  const end = performance.now() + 300;
  while (runs.length < 5 || (performance.now() < end && runs.length < 200)) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
  }
  return runs.sort((a, b) => a - b)[runs.length >> 1]!;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: String(Math.min(2, os.availableParallelism())) },
      types: { type: 'string', default: 'Q8_0,F16,Q4_0,Q4_K,Q5_K,Q6_K' },
      tokens: { type: 'string', default: '128' },
      json: { type: 'boolean' },
      'f32-kquant': { type: 'boolean' },
    },
  });
  const be = new WasmBackend({ threads: Number(values.threads), kquant: !values['f32-kquant'] });
  const T = Number(values.tokens);
  const rows: Record<string, string | number>[] = [];
  const types = values.types!.split(',') as DType[];
  const unknown = types.filter((t) => !Object.hasOwn(DTYPES, t));
  if (unknown.length) throw new Error(`--types: unknown type ${unknown.join(', ')} (known: ${Object.keys(DTYPES).join(', ')})`);
  for (const dtype of types) {
    for (const [shape, N, K0] of SHAPES) {
      // K-quants need K % 256 == 0: 896 becomes 1024 (the 0.5B model stores such tensors otherwise)
      const K = dtype.endsWith('_K') ? Math.ceil(K0 / 256) * 256 : K0;
      const name = `${shape.split(' ')[0]} ${N}x${K}`;
      const w = randomWeight(be, dtype, N, K);
      for (const t of [1, T]) {
        const x = be.alloc(t * K),
          out = be.alloc(t * N);
        for (let i = 0; i < x.length; i++) x[i] = Math.random() - 0.5;
        const ms = time(() => be.matmul(out, x, w, t));
        const row = { dtype, shape: name, tokens: t, ms: +ms.toFixed(3), gmacs: +((N * K * t) / ms / 1e6).toFixed(1), gbs: +(tensorBytes(dtype, [N, K]) / ms / 1e6).toFixed(1) };
        rows.push(row);
        if (!values.json) {
          const what = t === 1 ? `${row.gbs} GB/s of weights` : `${row.gmacs} GMAC/s`;
          process.stdout.write(`${dtype.padEnd(5)} ${name.padEnd(17)} T=${String(t).padEnd(4)} ${ms.toFixed(3).padStart(8)} ms  ${what}\n`);
        }
        be.free?.(x);
        be.free?.(out);
      }
    }
  }
  if (values.json) process.stdout.write(JSON.stringify({ backend: be.name, threads: be.threads, node: process.version, rows }) + '\n');
  else process.stdout.write(`${be.name}, ${process.version}, ${os.cpus()[0]?.model ?? '?'}\n`);
  be.dispose?.();
}

try {
  main();
} catch (e) {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
