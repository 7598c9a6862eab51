// npm run bench:embed -- --model <file.gguf> [--tokens 32,256] [--batch 32] [--threads 2] [--reps 3] [--json]
// npm run bench:embed -- --set-pooling last --model in.gguf --out out.gguf
// Embedding throughput: qwen.ts's embed() and llama.cpp's embedding context (node-llama-cpp, .peer/)
// on the same GGUF and the same `--batch` token-id inputs of each length, alternating, each run in a
// fresh process; prints both sides' medians (inputs/s, tokens/s) and their ratio. Each side also
// returns its vector for the first input, and the cosine between the two is printed: both engines
// must have done the same work (same pooling, same tokens) for the figures to compare.
// --set-pooling writes a copy of a GGUF with {arch}.pooling_type (and add_eos_token with
// <|endoftext|>, as the Qwen3-Embedding GGUF files have), e.g. for a make_gguf.py file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createBackend } from '../src/backend/index.js';
import { embed, normalize } from '../src/embed/embed.js';
import { GGUF_POOLING, readPooling } from '../src/embed/pooling.js';
import type { GgufKV } from '../src/formats/gguf.js';
import { loadModel } from '../src/models/load.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { ggufVariant } from '../test/models/variants.js';
import { ensurePeer, machine, median, PEER, ROOT, runJson } from './peer_common.js';

const ENDOFTEXT = 151643;

/** What each side prints: per input length, the seconds for the whole batch and the first vector. */
type Side = { load_s: number; peak_rss_mb: number; runs: { tokens: number; seconds: number; vector: number[] }[] };

// The llama.cpp side. node-llama-cpp's embedding context holds one sequence: getEmbeddingFor
// evaluates one input per llama_decode (its tokens in one batch), inputs one after another under a
// lock, and reads llama_get_embeddings_seq (the GGUF's pooling). It appends EOS only when the input
// does not end with it: these inputs do, so both sides see the same tokens.
const RUNNER = `
import * as fs from 'node:fs';
import { getLlama } from 'node-llama-cpp';
const [model, inputsFile, threads] = [process.argv[2], process.argv[3], +process.argv[4]];
const inputs = JSON.parse(fs.readFileSync(inputsFile, 'utf8'));
const t0 = performance.now();
const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, maxThreads: 0, logLevel: 'error' });
const m = await llama.loadModel({ modelPath: model, gpuLayers: 0, useMmap: true });
const longest = Math.max(...inputs.map((b) => b[0].length));
const size = Math.ceil((longest + 1) / 256) * 256;
const ctx = await m.createEmbeddingContext({ contextSize: size, batchSize: size, threads, ignoreMemorySafetyChecks: true });
const load_s = (performance.now() - t0) / 1000;
await ctx.getEmbeddingFor(inputs[0][0].slice(-32)); // warm-up
const runs = [];
for (const batch of inputs) {
  const ts = performance.now();
  const out = [];
  for (const ids of batch) out.push(await ctx.getEmbeddingFor(ids));
  runs.push({ tokens: batch[0].length, seconds: (performance.now() - ts) / 1000, vector: Array.from(out[0].vector) });
}
process.stdout.write(JSON.stringify({ load_s, peak_rss_mb: process.resourceUsage().maxRSS / 1024, runs }) + '\\n');
process.exit(0);
`;

/** The qwen.ts side, in this process: embed() takes each length's whole batch in one call. */
async function qwenSide(model: string, inputsFile: string, threads: number): Promise<void> {
  const inputs: number[][][] = JSON.parse(fs.readFileSync(inputsFile, 'utf8'));
  const t0 = performance.now();
  const m = { model: loadModel(model, { backend: createBackend('wasm', threads) }), tokenizer: loadTokenizer(model), path: model };
  const load_s = (performance.now() - t0) / 1000;
  await embed(m, [inputs[0]![0]!.slice(-32)]); // warm-up
  const runs: Side['runs'] = [];
  for (const batch of inputs) {
    const ts = performance.now();
    const r = await embed(m, batch);
    runs.push({ tokens: batch[0]!.length, seconds: (performance.now() - ts) / 1000, vector: Array.from(r.embeddings[0]!) });
  }
  process.stdout.write(JSON.stringify({ load_s, peak_rss_mb: process.resourceUsage().maxRSS / 1024, runs } satisfies Side) + '\n');
  process.exit(0); // the wasm worker threads would keep the process alive
}

/** `batch` token-id inputs per length, each ending with <|endoftext|> (as Qwen3-Embedding's tokenizer ends them). */
function makeInputs(lengths: number[], batch: number, vocab: number): number[][][] {
  let s = 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % Math.min(vocab, ENDOFTEXT);
  return lengths.map((L) => Array.from({ length: batch }, () => [...Array.from({ length: L - 1 }, next), ENDOFTEXT]));
}

function setPooling(src: string, dst: string, pooling: string): void {
  const type = GGUF_POOLING.indexOf(pooling as (typeof GGUF_POOLING)[number]);
  if (type < 1 || type > 3) throw new Error(`--set-pooling must be mean, cls or last, got '${pooling}'`);
  ggufVariant(src, dst, (m: GgufKV[]) => {
    const arch = String(m.find((x) => x.key === 'general.architecture')?.value ?? '');
    const set = (kv: GgufKV) => {
      const i = m.findIndex((x) => x.key === kv.key);
      if (i >= 0) m[i] = kv;
      else m.push(kv);
    };
    set({ key: `${arch}.pooling_type`, type: 'u32', value: type });
    set({ key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: true });
    set({ key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: ENDOFTEXT });
  });
  process.stderr.write(`wrote ${dst} (pooling ${pooling})\n`);
}

const positive = (v: string, flag: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${flag} must be a positive integer, got '${v}'`);
  return Number(v);
};

function cosine(a: number[], b: number[]): number {
  const x = normalize(a),
    y = normalize(b);
  return x.reduce((s, v, i) => s + v * y[i]!, 0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      tokens: { type: 'string', default: '32,256' },
      batch: { type: 'string', default: '32' },
      threads: { type: 'string', default: '2' },
      reps: { type: 'string', default: '3' },
      json: { type: 'boolean' },
      'set-pooling': { type: 'string' },
      out: { type: 'string' },
      side: { type: 'string' },
      inputs: { type: 'string' },
    },
  });
  if (!values.model) throw new Error('usage: npm run bench:embed -- --model <file.gguf> [--tokens 32,256] [--batch 32] [--threads 2] [--reps 3] [--json]');
  const model = path.resolve(values.model),
    threads = positive(values.threads, '--threads');
  if (values.side === 'qwen') return qwenSide(model, values.inputs!, threads);
  if (values['set-pooling'] !== undefined) {
    if (!values.out) throw new Error('--set-pooling needs --out <copy.gguf>');
    return setPooling(model, path.resolve(values.out), values['set-pooling']);
  }
  const { pooling, source } = readPooling(model);
  if (pooling !== 'last' && pooling !== 'mean' && pooling !== 'cls') {
    throw new Error(`${model} is not an embedding GGUF (${source}): write a copy with --set-pooling last --out <copy.gguf>`);
  }
  const lengths = values.tokens.split(',').map((t) => positive(t, '--tokens'));
  const batch = positive(values.batch, '--batch'),
    reps = positive(values.reps, '--reps');
  ensurePeer();
  fs.writeFileSync(path.join(PEER, 'embed-run.mjs'), RUNNER);
  const inputsFile = path.join(PEER, 'embed-inputs.json');
  fs.writeFileSync(inputsFile, JSON.stringify(makeInputs(lengths, batch, loadTokenizer(model).vocabSize)));
  const self = fileURLToPath(import.meta.url);
  const rows: { qwen: Side[]; llama: Side[] } = { qwen: [], llama: [] };
  for (let i = 0; i < reps; i++) {
    rows.qwen.push(runJson<Side>(process.execPath, [self, '--side', 'qwen', '--model', model, '--inputs', inputsFile, '--threads', String(threads)], ROOT));
    rows.llama.push(runJson<Side>(process.execPath, [path.join(PEER, 'embed-run.mjs'), model, inputsFile, String(threads)], PEER));
    const brief = (s: Side) => s.runs.map((r) => `${r.tokens} tok: ${(batch / r.seconds).toFixed(2)} inputs/s`).join(', ');
    process.stderr.write(`rep ${i + 1}/${reps}: qwen.ts ${brief(rows.qwen[i]!)}; llama.cpp ${brief(rows.llama[i]!)}\n`);
  }
  const summary = (side: Side[]) => ({
    load_s: median(side.map((s) => s.load_s)),
    peak_rss_mb: median(side.map((s) => s.peak_rss_mb)),
    inputs_per_s: lengths.map((_, k) => median(side.map((s) => batch / s.runs[k]!.seconds))),
  });
  const q = summary(rows.qwen),
    l = summary(rows.llama);
  const agreement = lengths.map((_, k) => cosine(rows.qwen[0]!.runs[k]!.vector, rows.llama[0]!.runs[k]!.vector));
  const strip = (side: Side[]) => side.map((s) => ({ ...s, runs: s.runs.map(({ tokens, seconds }) => ({ tokens, seconds })) }));
  const result = {
    model,
    pooling,
    tokens: lengths,
    batch,
    threads,
    reps,
    qwen_ts: q,
    llama_cpp: l,
    cosine_first_input: agreement,
    machine: machine(),
    node: process.version,
    date: new Date().toISOString(),
    runs: { qwen: strip(rows.qwen), llama: strip(rows.llama) },
  };
  if (values.json) return void process.stdout.write(JSON.stringify(result) + '\n');
  const f = (v: number, w = 11) => v.toFixed(v < 10 ? 2 : 1).padStart(w);
  process.stdout.write(`${path.basename(model)}: ${batch} inputs per length, pooling ${pooling}, ${threads} threads, median of ${reps} alternating runs\n`);
  process.stdout.write(`${'inputs/s'.padEnd(12)}${lengths.map((L) => `${L} tok`.padStart(11)).join('')}${'load s'.padStart(9)}${'RSS MB'.padStart(9)}\n`);
  process.stdout.write(`${'qwen.ts'.padEnd(12)}${q.inputs_per_s.map((v) => f(v)).join('')}${f(q.load_s, 9)}${f(q.peak_rss_mb, 9)}\n`);
  process.stdout.write(`${'llama.cpp'.padEnd(12)}${l.inputs_per_s.map((v) => f(v)).join('')}${f(l.load_s, 9)}${f(l.peak_rss_mb, 9)}\n`);
  process.stdout.write(`${'ratio'.padEnd(12)}${q.inputs_per_s.map((v, k) => f(v / l.inputs_per_s[k]!)).join('')}\n`);
  process.stdout.write(`cosine(qwen.ts, llama.cpp), first input: ${agreement.map((c) => c.toFixed(6)).join(', ')}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench:embed: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
