// LoRA fine-tuning throughput: `finetune()` as a user runs it (data, loop, AdamW, checkpoint) on a
// synthetic task, the same as scripts/torch_finetune_bench.py's: --seqs sequences of --seq-len
// tokens per optimizer step, the loss on every position, rank --rank on all seven linear layers.
// Prints training tokens/s over the steps after the first (warm-up), and the peak RSS. For the
// 0.5B shape:
//   python3 /work/shared/peer/make_gguf.py --preset qwen2.5-0.5b --type q8_0 --out /tmp/q05-q8_0.gguf
//   python3 /work/shared/peer/make_gguf.py --preset qwen2.5-0.5b --type f16 --out /tmp/q05-f16.gguf
//   node dist/src/cli/main.js quantize /tmp/q05-f16.gguf /tmp/q05-bf16.gguf --type bf16
//   node dist/bench/finetune.js --model /tmp/q05-q8_0.gguf [--threads 2] [--rank 16] [--seqs 2] [--seq-len 128] [--steps 2] [--json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fail } from '../src/errors.js';
import { Rng } from '../src/generate/sampler.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { finetune } from '../src/train/finetune.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string', default: '2' },
    rank: { type: 'string', default: '16' },
    seqs: { type: 'string', default: '2' },
    'seq-len': { type: 'string', default: '128' },
    steps: { type: 'string', default: '2' },
    json: { type: 'boolean' },
  },
});
if (!values.model) fail('--model is required (see the header of bench/finetune.ts)');
const [threads, rank, seqs, L, steps] = [values.threads, values.rank, values.seqs, values['seq-len'], values.steps].map(Number) as [number, number, number, number, number];

// examples of exactly L tokens: a completion of L - 1 tokens of random words plus the EOS, no prompt
const tok = loadTokenizer(values.model);
const rng = new Rng(1);
const words = Array.from({ length: 64 }, () => Array.from({ length: 2 + Math.floor(rng.next() * 6) }, () => String.fromCharCode(97 + Math.floor(rng.next() * 26))).join(''));
const example = (): string => {
  for (;;) {
    let text = '';
    while (tok.encode(text).length < L + 8) text += ` ${words[Math.floor(rng.next() * words.length)]}`;
    const cut = tok.decode(tok.encode(text).slice(0, L - 1));
    if (tok.encode(cut).length === L - 1) return cut;
  }
};
/** CPU seconds used by this process, all threads (the worker pool included). */
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qwen-ts-bench-ft-'));
const data = path.join(dir, 'train.jsonl');
fs.writeFileSync(data, Array.from({ length: (steps + 1) * seqs }, () => JSON.stringify({ prompt: '', completion: example() })).join('\n') + '\n');

const times: number[] = [];
let cpuAtFirst = 0;
let loaded = 0;
const t0 = Date.now();
try {
  await finetune({ model: values.model, data, out: path.join(dir, 'out'), rank, alpha: 2 * rank, epochs: 1, batchTokens: seqs * L, threads, seed: 1, onWarning: () => {} }, (e) => {
    if (e.type === 'start') {
      loaded = Date.now();
      if (e.tokens !== (steps + 1) * seqs * L) fail(`the examples hold ${e.tokens} tokens, not ${(steps + 1) * seqs * L}`);
    }
    if (e.type === 'step') {
      times.push(Date.now());
      if (times.length === 1) cpuAtFirst = cpuSeconds();
      if (!values.json) process.stderr.write(`step ${e.step}/${e.totalSteps}: ${((times.at(-1)! - (times.at(-2) ?? loaded)) / 1000).toFixed(1)} s, loss ${e.loss.toFixed(3)}\n`);
    }
  });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
const secs = (times.at(-1)! - times[0]!) / 1000;
const cpu = cpuSeconds() - cpuAtFirst;
const out = {
  engine: 'qwen.ts',
  model: path.basename(values.model),
  threads,
  rank,
  tokens_per_step: seqs * L,
  steps,
  load_seconds: (loaded - t0) / 1000,
  first_step_seconds: (times[0]! - loaded) / 1000,
  seconds_per_step: secs / steps,
  tokens_per_second: (steps * seqs * L) / secs,
  // CPU time of all threads: on a busy machine wall time also counts waits for a core
  tokens_per_cpu_second: (steps * seqs * L) / cpu,
  peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
};
process.stdout.write(
  values.json
    ? `${JSON.stringify(out)}\n`
    : `${out.model}: ${out.tokens_per_second.toFixed(2)} training tokens/s, ${out.tokens_per_cpu_second.toFixed(2)} per CPU second (${out.seconds_per_step.toFixed(1)} s per ${seqs * L}-token step; first step ${out.first_step_seconds.toFixed(1)} s; load ${out.load_seconds.toFixed(1)} s; peak RSS ${out.peak_rss_mb} MB)\n`,
);
