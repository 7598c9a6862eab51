// npm run bench:peer -- --model <file.gguf> [--prompt-tokens 128] [--gen-tokens 64] [--threads 2] [--reps 3] [--base DIR]
// qwen.ts and llama.cpp (node-llama-cpp from npm) on the same GGUF file, alternating, each run in
// a fresh process; prints both sides' medians and the ratios qwen.ts / llama.cpp as a table and JSON.
// --base DIR: also run an earlier build of qwen.ts (DIR holds its dist/, e.g. a copy made before a
// change) in the same alternation, for before/after figures measured side by side.
// node-llama-cpp is installed on demand into .peer/ (peer_common.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ensurePeer, machine, median, PEER, ROOT, runJson } from './peer_common.js';

// The llama.cpp side: same prompt generator and seed as src/cli/bench.ts, greedy, EOS ignored.
const RUNNER = `
import { getLlama } from 'node-llama-cpp';
const [model, P, G, threads] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
const t0 = performance.now();
const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, maxThreads: 0, logLevel: 'error' });
const m = await llama.loadModel({ modelPath: model, gpuLayers: 0, useMmap: true });
const ctx = await m.createContext({ contextSize: Math.ceil((P + G + 16) / 256) * 256, batchSize: 512, sequences: 1, threads, ignoreMemorySafetyChecks: true });
const load_s = (performance.now() - t0) / 1000;
const seq = ctx.getSequence();
const nVocab = m.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 256;
const maxNormal = nVocab > 151643 ? 151643 : Math.min(256, nVocab);
let s = 1;
const prompt = Array.from({ length: P }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % maxNormal);
async function once(p, g) {
  await seq.clearHistory();
  const ts = performance.now();
  let n = 0, tf = 0;
  for await (const tok of seq.evaluate(p, { temperature: 0, yieldEogToken: true })) {
    if (++n === 1) tf = performance.now();
    if (n >= g + 1) break;
  }
  return { prefill_tps: p.length / ((tf - ts) / 1000), decode_tps: g / ((performance.now() - tf) / 1000) };
}
await once(prompt.slice(0, 32), 4); // warm-up
const r = await once(prompt, G);
process.stdout.write(JSON.stringify({ ...r, load_s, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }) + '\\n');
process.exit(0);
`;

type Row = { prefill_tps: number; decode_tps: number; load_s: number; peak_rss_mb: number };

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      'prompt-tokens': { type: 'string', default: '128' },
      'gen-tokens': { type: 'string', default: '64' },
      threads: { type: 'string', default: '2' },
      reps: { type: 'string', default: '3' },
      json: { type: 'boolean' },
      base: { type: 'string' },
    },
  });
  if (!values.model) throw new Error('usage: npm run bench:peer -- --model <file.gguf> [--prompt-tokens 128] [--gen-tokens 64] [--threads 2] [--reps 3]');
  const model = path.resolve(values.model);
  const [P, G, threads, reps] = [values['prompt-tokens'], values['gen-tokens'], values.threads, values.reps].map(Number) as [number, number, number, number];
  ensurePeer();
  fs.writeFileSync(path.join(PEER, 'run.mjs'), RUNNER);
  const qwenScript = (root: string) => `import { run } from ${JSON.stringify(path.join(root, 'dist', 'src', 'cli', 'bench.js'))}; await run(process.argv.slice(1));`;
  const qwenArgs = (root: string) => [
    '--input-type=module',
    '-e',
    qwenScript(root),
    '--',
    '--model',
    model,
    '--prompt-tokens',
    String(P),
    '--gen-tokens',
    String(G),
    '--threads',
    String(threads),
    '--warmup',
    '1',
    '--json',
  ];
  const base = values.base ? path.resolve(values.base) : undefined;
  const rows: { qwen: Row[]; llama: Row[]; base: Row[] } = { qwen: [], llama: [], base: [] };
  for (let i = 0; i < reps; i++) {
    if (base) {
      rows.base.push(runJson<Row>(process.execPath, qwenArgs(base), base));
      process.stderr.write(`rep ${i + 1}/${reps}: base    ${JSON.stringify(rows.base[i])}\n`);
    }
    rows.qwen.push(runJson<Row>(process.execPath, qwenArgs(ROOT), ROOT));
    rows.llama.push(runJson<Row>(process.execPath, [path.join(PEER, 'run.mjs'), model, String(P), String(G), String(threads)], PEER));
    process.stderr.write(`rep ${i + 1}/${reps}: qwen.ts ${JSON.stringify(rows.qwen[i])}\n           llama.cpp ${JSON.stringify(rows.llama[i])}\n`);
  }
  const keys = ['prefill_tps', 'decode_tps', 'load_s', 'peak_rss_mb'] as const;
  const med = (side: Row[]) => Object.fromEntries(keys.map((k) => [k, median(side.map((r) => r[k]))])) as Row;
  const q = med(rows.qwen),
    l = med(rows.llama);
  const ratio = Object.fromEntries(keys.map((k) => [k, q[k] / l[k]]));
  const result = {
    model,
    prompt_tokens: P,
    gen_tokens: G,
    threads,
    reps,
    qwen_ts: q,
    llama_cpp: l,
    ratio,
    base_ts: base ? med(rows.base) : undefined,
    machine: machine(),
    node: process.version,
    date: new Date().toISOString(),
    runs: rows,
  };
  if (values.json) return void process.stdout.write(JSON.stringify(result) + '\n');
  const f = (v: number) => v.toFixed(v < 10 ? 2 : 1).padStart(9);
  process.stdout.write(`${path.basename(model)}: prompt ${P}, gen ${G}, ${threads} threads, median of ${reps} alternating runs\n`);
  process.stdout.write(`${''.padEnd(12)}${'prefill/s'.padStart(9)}${'decode/s'.padStart(9)}${'load s'.padStart(9)}${'RSS MB'.padStart(9)}\n`);
  process.stdout.write(`${'qwen.ts'.padEnd(12)}${keys.map((k) => f(q[k])).join('')}\n`);
  process.stdout.write(`${'llama.cpp'.padEnd(12)}${keys.map((k) => f(l[k])).join('')}\n`);
  process.stdout.write(`${'ratio'.padEnd(12)}${keys.map((k) => f(ratio[k]!)).join('')}\n`);
  if (base) {
    const b = med(rows.base);
    process.stdout.write(`${'base'.padEnd(12)}${keys.map((k) => f(b[k])).join('')}\n`);
    process.stdout.write(`${'base ratio'.padEnd(12)}${keys.map((k) => f(b[k] / l[k])).join('')}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`bench:peer: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
