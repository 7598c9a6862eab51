// Speculative decoding benchmark (issue 13): greedy decode speed of a target model alone, with a
// draft model (--draft: e.g. a Q4_0 copy of the same weights, k proposals a step) and with prompt
// lookup (--spec ngram); the acceptance rate of each; and a check that every configuration gives
// plain decoding's tokens. Configurations alternate within each repetition; medians are reported.
// By hand, not in the tests:
//   node dist/bench/speculative.js --target BF16.gguf --draft Q4_0.gguf [--threads 2] [--prompt-tokens 64]
//        [--gen-tokens 128] [--draft-max 2,4] [--p-min 0,0.75] [--reps 3] [--pass-rows 1,3,5] [--json]
// (--p-min: the draft stops proposing where its top token's probability is below it; 0: never;
// --pass-rows: also time the target's forward pass over that many rows, with and without the
// small-batch kernels, and the draft's one-row pass; with --threads 1 their CPU times give each
// draft config's speed-up as a quiet machine would see it, printed as "projected")
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { createBackend } from '../src/backend/index.js';
import { WasmBackend } from '../src/backend/wasm.js';
import { Scheduler } from '../src/generate/scheduler.js';
import { SpecMark } from '../src/generate/spec.js';
import type { Speculation } from '../src/generate/spec_propose.js';
import { loadModel } from '../src/models/load.js';
import { loadMtp } from '../src/models/mtp.js';
import type { CausalLM } from '../src/models/model.js';
import { median } from './peer_common.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    draft: { type: 'string' },
    threads: { type: 'string' },
    'prompt-tokens': { type: 'string', default: '64' },
    'gen-tokens': { type: 'string', default: '128' },
    'draft-max': { type: 'string', default: '2,4' },
    'p-min': { type: 'string', default: '0,0.75' },
    reps: { type: 'string', default: '3' },
    'pass-rows': { type: 'string', default: '1,3,5' },
    json: { type: 'boolean' },
    mtp: { type: 'boolean' }, // also --spec mtp (the target's MTP block) with k = each --draft-max
  },
});
if (!values.target) throw new Error('--target FILE is required (and --draft FILE for the draft-model runs)');
const threads = values.threads === undefined ? os.availableParallelism() : Number(values.threads);
const backend = createBackend('wasm', threads);
const target = loadModel(values.target, { backend, onNote: () => {} });
const draft = values.draft ? loadModel(values.draft, { backend, onNote: () => {} }) : undefined;
const gen = Number(values['gen-tokens']);
// a prompt of ordinary token ids (below Qwen's special tokens), the same for every run
const prompt = Array.from({ length: Number(values['prompt-tokens']) }, (_, i) => (i * 7919 + 13) % Math.min(151643, target.config.vocab_size));

const configs: [string, Speculation | undefined][] = [
  ['plain', undefined],
  ...(draft
    ? values['draft-max']
        .split(',')
        .flatMap((k) => values['p-min'].split(',').map((p): [string, Speculation] => [`draft k=${k} p=${p}`, { method: 'draft', model: draft, max: Number(k), pMin: Number(p) }]))
    : []),
  ['ngram k=6', { method: 'ngram', max: 6 }],
  ...(values.mtp ? values['draft-max'].split(',').map((k): [string, Speculation] => [`mtp k=${k}`, { method: 'mtp', head: loadMtp(values.target!, target), max: Number(k) }]) : []),
];

interface Run {
  tokens: number[];
  decodeTokS: number;
  proposed: number;
  accepted: number;
}

async function run(model: CausalLM, spec: Speculation | undefined): Promise<Run> {
  const s = new Scheduler(model, 256, 1, 0, spec);
  const tokens: number[] = [];
  let t1 = 0;
  for await (const step of s.submit(prompt, { temperature: 0, max_tokens: gen })) {
    if (!tokens.length) t1 = performance.now(); // decode: from the first token on (the prefill is the same for all)
    tokens.push(step.token);
  }
  const secs = (performance.now() - t1) / 1000;
  const sp = s.stats.speculation ?? { proposed: 0, accepted: 0 };
  return { tokens, decodeTokS: (tokens.length - 1) / secs, ...sp };
}

await run(target, undefined); // warm-up: JIT and the kernels' first run

/**
 * A model's forward pass over T rows of one sequence after the prompt (a verify pass of T-1
 * proposals: logits for every row), median of 7, T values alternating; with the small-batch
 * kernels (src/kernels/small.ts, small_q8.ts) and, alternating, without them (as before). ms: wall
 * time; cpu: the process's CPU time, which with one thread is the pass's own cost however often a
 * busy host deschedules it.
 */
interface PassCost {
  rows: number;
  ms: number;
  cpu: number;
  msBefore: number | null;
  cpuBefore: number | null;
}
function passCost(model: CausalLM, Ts: number[]): PassCost[] {
  const wasm = backend instanceof WasmBackend ? backend : null,
    on = wasm?.smallRows ?? 1;
  const cache = model.newCache(prompt.length + 64);
  model.forward(
    prompt.map((token, pos) => ({ token, pos, seq: 0, logits: pos === prompt.length - 1 })),
    [cache],
  );
  const mark = new SpecMark();
  mark.mark(cache);
  const ms = Ts.map(() => [[], []] as number[][]),
    cpu = Ts.map(() => [[], []] as number[][]);
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  for (let r = 0; r < 8; r++)
    for (const mode of r % 2 ? [1, 0] : [0, 1]) {
      if (mode === 1 && (!wasm || on <= 1)) continue;
      if (wasm) wasm.smallRows = mode ? 1 : on;
      Ts.forEach((T, i) => {
        const t0 = performance.now(),
          c0 = cpuMs();
        model.forward(
          Array.from({ length: T }, (_, j) => ({ token: prompt[j]!, pos: prompt.length + j, seq: 0, logits: true })),
          [cache],
        );
        if (r > 0) {
          // round 0 warms up
          ms[i]![mode]!.push(performance.now() - t0);
          cpu[i]![mode]!.push(cpuMs() - c0);
        }
        mark.rewind(cache, prompt.length); // (a Qwen3.5 cache: its recurrent state copied back)
      });
    }
  if (wasm) wasm.smallRows = on;
  const med = (a: number[]) => (a.length ? +median(a).toFixed(1) : null);
  return Ts.map((rows, i) => ({ rows, ms: med(ms[i]![0]!)!, cpu: med(cpu[i]![0]!)!, msBefore: med(ms[i]![1]!), cpuBefore: med(cpu[i]![1]!) }));
}
const pass = passCost(target, values['pass-rows'].split(',').map(Number));
const draftPass = draft ? passCost(draft, [1])[0] : undefined;
const results = new Map<string, Run[]>(configs.map(([n]) => [n, []]));
for (let r = 0; r < Number(values.reps); r++) {
  const order = r % 2 ? [...configs].reverse() : configs;
  for (const [name, spec] of order) results.get(name)!.push(await run(target, spec));
}
const plain = results.get('plain')!;
const base = median(plain.map((x) => x.decodeTokS));
const rows = configs.map(([name]) => {
  const rs = results.get(name)!;
  const tokS = median(rs.map((x) => x.decodeTokS));
  const proposed = rs.reduce((a, x) => a + x.proposed, 0),
    accepted = rs.reduce((a, x) => a + x.accepted, 0);
  // a draft config's speed-up projected from the one-thread CPU costs (a quiet machine's): k
  // proposals accepted at this rate give 1 + k * rate tokens per round of k draft passes and one
  // verify pass of k+1 rows, against one plain pass per token
  const k = Number(/draft k=(\d+)/.exec(name)?.[1] ?? NaN),
    verify = pass.find((p) => p.rows === k + 1),
    one = pass.find((p) => p.rows === 1);
  const projected = draftPass && verify && one && proposed ? +(((1 + (k * accepted) / proposed) * one.cpu) / (k * draftPass.cpu + verify.cpu)).toFixed(2) : null;
  return {
    config: name,
    decodeTokS: +tokS.toFixed(2),
    speedup: +(tokS / base).toFixed(2),
    acceptance: proposed ? +(accepted / proposed).toFixed(3) : null,
    projected,
    sameTokens: rs.every((x) => x.tokens.join() === plain[0]!.tokens.join()),
  };
});
(backend as { dispose?(): void }).dispose?.();
const out = { target: values.target, draft: values.draft, threads, node: process.version, promptTokens: prompt.length, genTokens: gen, reps: Number(values.reps), rows, pass, draftPass };
if (values.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
else {
  process.stdout.write(`target ${values.target}, draft ${values.draft ?? '-'}, ${threads} threads, ${prompt.length}-token prompt, ${gen} tokens, median of ${values.reps}\n`);
  for (const r of rows)
    process.stdout.write(
      `${r.config.padEnd(18)} ${String(r.decodeTokS).padStart(7)} tok/s  x${r.speedup}  acceptance ${r.acceptance ?? '-'}${r.projected === null ? '' : `  projected from CPU costs x${r.projected}`}  same tokens: ${r.sameTokens}\n`,
    );
  const fmt = (p: PassCost) => `T=${p.rows} ${p.ms} ms, CPU ${p.cpu} ms${p.msBefore === null ? '' : ` (before: ${p.msBefore} ms, CPU ${p.cpuBefore} ms)`}`;
  process.stdout.write(`target forward pass, rows of one sequence (median of 7): ${pass.map(fmt).join('; ')}\n`);
  if (draftPass) process.stdout.write(`draft forward pass: ${fmt(draftPass)}\n`);
}
