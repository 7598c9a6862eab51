// qwen-ts bench --model <file.gguf|dir> [--prompt-tokens 128] [--gen-tokens 64] [--threads N] [--json]
// Prefill a fixed pseudo-random prompt in one batch, then decode greedily (EOS ignored), and
// report tokens per second, load time and peak RSS. The prompt is the same as the llama.cpp peer
// benchmark's (same generator and seed), so the two can be compared side by side.
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import { loadModel } from '../models/load.js';
import type { CausalLM } from '../models/model.js';
import { BACKEND_OPTIONS, backendFromArgs } from '../backend/index.js';
import { LOAD_HELP, LOAD_OPTIONS, LORA_HELP, LORA_OPTIONS, loraFromArgs, quantizeFromArgs, resolveModelArg, SEQ_HELP, SEQ_OPTIONS, seqFromArgs } from './resolve.js';
import { ProfiledBackend } from '../backend/profile.js';

const HELP = `usage: qwen-ts bench --model <file.gguf|dir> [--prompt-tokens 128] [--gen-tokens 64]
                     [--threads N] [--reps 1] [--warmup 0] [--backend wasm|wasm-simd|reference] [--quantize TYPE] [--check-tensors] [--ctx-size N] [--cache-type f32|f16|q8_0] [--json] [--profile]
Prefills --prompt-tokens tokens in one batch, then decodes --gen-tokens tokens greedily (EOS
ignored). Prints prefill and decode tokens/s, load time and peak RSS (median over --reps).
--profile: one more run that times every backend op, printed per phase (to stderr).
${LOAD_HELP}
${LORA_HELP}
${SEQ_HELP}`;

export interface BenchResult {
  prefill_tps: number;
  decode_tps: number;
  load_s: number;
  peak_rss_mb: number;
  backend: string;
  threads: number;
  prompt_tokens: number;
  gen_tokens: number;
  /** --quantize, when given */
  quantize?: string;
  /** --cache-type, when given */
  cache_type?: string;
  /** the --lora adapter every sequence ran with */
  lora?: string;
  reps?: { prefill_tps: number; decode_tps: number }[];
}

/** The peer benchmark's prompt: an LCG over the ordinary (non-special) token ids. */
export function benchPrompt(n: number, vocab: number, seed = 1): number[] {
  const maxNormal = vocab > 151643 ? 151643 : Math.min(256, vocab);
  let s = seed >>> 0;
  return Array.from({ length: n }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % maxNormal);
}

function argmax(a: Float32Array): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[b]!) b = i;
  return b;
}

export function runBench(model: CausalLM, P: number, G: number, phase?: (name: string) => void): { prefill_tps: number; decode_tps: number } {
  const prompt = benchPrompt(P, model.config.vocab_size);
  const cache = model.newCache(P + G + 1);
  phase?.(`prefill ${P} tokens (one batch)`);
  const t0 = performance.now();
  let logits = model.forward(
    prompt.map((token, pos) => ({ token, pos, seq: 0, logits: pos === P - 1 })),
    [cache],
  );
  const t1 = performance.now();
  phase?.(`decode ${G} tokens`);
  let tok = argmax(logits);
  for (let i = 0; i < G; i++) {
    logits = model.forward([{ token: tok, pos: P + i, seq: 0, logits: true }], [cache]);
    tok = argmax(logits);
  }
  const t2 = performance.now();
  cache.release();
  return { prefill_tps: P / ((t1 - t0) / 1000), decode_tps: G / ((t2 - t1) / 1000) };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      'prompt-tokens': { type: 'string', default: '128' },
      'gen-tokens': { type: 'string', default: '64' },
      ...BACKEND_OPTIONS,
      ...LOAD_OPTIONS,
      ...LORA_OPTIONS,
      ...SEQ_OPTIONS,
      reps: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '0' },
      json: { type: 'boolean' },
      profile: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (!values.model) fail('--model is required\n' + HELP);
  const int = (name: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
  const P = int('prompt-tokens', values['prompt-tokens'], 1),
    G = int('gen-tokens', values['gen-tokens'], 0);
  const threads = int('threads', values.threads ?? String(os.availableParallelism()), 1);
  const reps = int('reps', values.reps, 1),
    warmup = int('warmup', values.warmup, 0);
  const quantize = quantizeFromArgs(values);
  const { ctxSize, cacheType } = seqFromArgs(values);
  const backend = backendFromArgs(values);
  const path = await resolveModelArg(values.model);
  const lora = await loraFromArgs(values);
  const tl = performance.now();
  const checkTensors = values['check-tensors'];
  const model = loadModel(path, { backend, quantize, checkTensors, ctxSize, cacheType, lora });
  const load_s = (performance.now() - tl) / 1000;
  if (P + G + 1 > model.config.max_position_embeddings) fail(`--prompt-tokens + --gen-tokens + 1 exceeds the ${ctxSize ? '--ctx-size' : "model's"} context (${model.config.max_position_embeddings})`);
  for (let i = 0; i < warmup; i++) runBench(model, P, Math.min(G, 4));
  const runs = Array.from({ length: reps }, () => runBench(model, P, G));
  const res: BenchResult = {
    prefill_tps: median(runs.map((r) => r.prefill_tps)),
    decode_tps: median(runs.map((r) => r.decode_tps)),
    load_s,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    backend: backend.name,
    threads,
    prompt_tokens: P,
    gen_tokens: G,
  };
  if (quantize) res.quantize = quantize;
  if (cacheType) res.cache_type = cacheType;
  if (lora) res.lora = values.lora;
  if (reps > 1) res.reps = runs;
  if (values.profile) {
    const prof = new ProfiledBackend(backend);
    runBench(loadModel(path, { backend: prof.backend, quantize, checkTensors, ctxSize, cacheType, lora, onNote: () => {} }), P, G, (p) => (prof.phase = p));
    process.stderr.write(prof.report() + '\n');
  }
  backend.dispose?.();
  if (values.json) process.stdout.write(JSON.stringify(res) + '\n');
  else {
    process.stdout.write(
      `${backend.name}: prefill ${res.prefill_tps.toFixed(1)} tok/s, decode ${res.decode_tps.toFixed(1)} tok/s, ` + `load ${res.load_s.toFixed(2)} s, peak RSS ${res.peak_rss_mb.toFixed(0)} MB\n`,
    );
  }
}
