// One LoRA training step (src/train/grad.ts lossAndGrad: forward, loss over the full vocabulary,
// backward with per-layer recomputation) on a given base model: tokens/s and the time of each
// backend op (the rest is TypeScript outside the ops: the loss's log-softmax, gradient sums).
// A random adapter of --rank on all seven modules of every layer, one sequence of --tokens random
// ids with the loss on every position. For the 0.5B shape:
//   python3 /work/shared/peer/make_gguf.py --preset qwen2.5-0.5b --type q8_0 --out /tmp/q05.gguf
//   node dist/bench/train_step.js --model /tmp/q05.gguf [--rank 16] [--tokens 512] [--threads 2] [--steps 2] [--json]
import { parseArgs } from 'node:util';
import type { Weight } from '../src/backend/backend.js';
import { createBackend } from '../src/backend/index.js';
import { ProfiledBackend } from '../src/backend/profile.js';
import { fail } from '../src/errors.js';
import { LORA_TARGETS, loraScale, type LoraAdapter, type LoraModule } from '../src/lora/adapter.js';
import { loadTrainModel, lossAndGrad, type TrainModel } from '../src/train/grad.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    rank: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '512' },
    threads: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '2' },
    json: { type: 'boolean' },
  },
});
if (!values.model) fail('--model FILE is required (see the header of bench/train_step.ts)');

/** A random adapter (A and B non-zero, small) of rank r on every target of every layer. */
function randomAdapter(m: TrainModel, r: number): LoraAdapter {
  const c = m.config,
    D = c.hidden_size,
    F = c.intermediate_size,
    q = c.num_attention_heads * c.head_dim,
    kv = c.num_key_value_heads * c.head_dim;
  const nk: Record<string, [number, number]> = { q_proj: [q, D], k_proj: [kv, D], v_proj: [kv, D], o_proj: [D, q], gate_proj: [F, D], up_proj: [F, D], down_proj: [D, F] };
  let s = 1;
  const rnd = (n: number, amp: number) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff) / 2 ** 30 - 1) * amp);
  const modules: LoraModule[] = [];
  for (let layer = 0; layer < c.num_hidden_layers; layer++)
    for (const target of LORA_TARGETS) {
      const [N, K] = nk[target]!;
      const part = ['gate_proj', 'up_proj', 'down_proj'].includes(target) ? 'mlp' : 'self_attn';
      modules.push({
        name: `model.layers.${layer}.${part}.${target}`,
        layer,
        target,
        r,
        inFeatures: K,
        outFeatures: N,
        scale: loraScale(2 * r, r, false),
        a: rnd(r * K, 1 / Math.sqrt(K)),
        b: rnd(N * r, 0.01),
      });
    }
  return { name: 'bench', config: { r, lora_alpha: 2 * r, use_rslora: false, target_modules: [...LORA_TARGETS] }, modules };
}

const threads = Number(values.threads),
  T = Number(values.tokens),
  r = Number(values.rank),
  steps = Math.max(1, Number(values.steps));
// products on F32 weights (the adapter's A and B) are timed apart from the base weights'
const prof = new ProfiledBackend(createBackend(values.backend, threads), (op, a) => ((op === 'matmul' || op === 'matmulT') && (a[2] as Weight).dtype === 'F32' ? `${op} (LoRA)` : op));
const t0 = performance.now();
const model = await loadTrainModel(values.model, { backend: prof.backend, onNote: () => {} });
const loadS = (performance.now() - t0) / 1000;
const adapter = randomAdapter(model, r);
let x = 7;
const tokens = Int32Array.from({ length: T }, () => (x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff) % model.config.vocab_size);
const seq = { tokens, mask: new Uint8Array(T).fill(1) };
const times: number[] = [];
let loss = 0,
  cpuS = 0;
for (let i = 0; i < steps; i++) {
  prof.times.clear(); // the last step's split is reported (the first warms the kernels up)
  const s0 = performance.now(),
    c0 = process.cpuUsage();
  loss = lossAndGrad(model, adapter, [seq]).loss;
  times.push((performance.now() - s0) / 1000);
  const c = process.cpuUsage(c0);
  cpuS = (c.user + c.system) / 1e6; // all threads: on a busy machine, the work done whatever the wait
}
const last = times[times.length - 1]!;
const ops = [...(prof.times.get('all') ?? new Map())].sort((a, b) => b[1].ms - a[1].ms);
const inOps = ops.reduce((n, [, p]) => n + p.ms, 0) / 1000;
const mem = process.memoryUsage();
const result = {
  model: values.model,
  backend: model.backend.name,
  threads,
  rank: r,
  tokens: T,
  loadS: +loadS.toFixed(2),
  stepS: times.map((t) => +t.toFixed(2)),
  tokensPerS: +(T / last).toFixed(1),
  cpuS: +cpuS.toFixed(1),
  tokensPerCpuS: +(T / cpuS).toFixed(2),
  loss: loss / (T - 1),
  rssMiB: Math.round(mem.rss / 2 ** 20),
  ops: Object.fromEntries(ops.map(([op, p]) => [op, { s: +(p.ms / 1000).toFixed(2), share: +(p.ms / 1000 / last).toFixed(3), calls: p.calls }])) as Record<
    string,
    { s: number; share: number; calls: number }
  >,
  outsideOpsS: +(last - inOps).toFixed(2),
};
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(
    `${result.backend}, rank ${r}, ${T} tokens: step ${result.stepS.join(' / ')} s -> ${result.tokensPerS} tokens/s; CPU ${result.cpuS} s -> ${result.tokensPerCpuS} tokens per CPU-second (loss ${result.loss.toFixed(3)} per target, RSS ${result.rssMiB} MiB, load ${result.loadS} s)`,
  );
  for (const [op, p] of Object.entries(result.ops)) console.log(`  ${op.padEnd(14)} ${p.s.toFixed(2).padStart(7)} s ${(100 * p.share).toFixed(1).padStart(5)}%  ${String(p.calls).padStart(6)} calls`);
  console.log(`  ${'outside ops'.padEnd(14)} ${result.outsideOpsS.toFixed(2).padStart(7)} s ${((100 * result.outsideOpsS) / last).toFixed(1).padStart(5)}%`);
}
model.dispose();
