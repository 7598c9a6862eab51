// KV-cache types (--cache-type, issue 13 item 4): bytes per token for each type on a few Qwen shapes
// (computed from the layout: 2 x attention layers x a row of kv_heads x head_dim values, rows padded
// to 4 bytes), and decode speed at a long context: `qwen-ts bench` with a --prompt-tokens prompt then
// --gen-tokens greedy tokens, f32 / f16 / q8_0 alternating in fresh processes (a shared, noisy
// machine), on a random-weight Qwen2.5-0.5B-shaped Q8_0 file written into a temp folder. By hand:
//   node dist/bench/kv_cache_type.js [--model DIR] [--threads 2] [--prompt-tokens 2000] [--gen-tokens 64] [--rounds 3] [--json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { KV_TYPES, kvRowWords, type KvType } from '../src/backend/backend.js';
import type { BenchResult } from '../src/cli/bench.js';
import { writeRandomQwen2 } from '../test/engine/random_model.js';
import { median, ROOT, runJson } from './peer_common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' }, threads: { type: 'string', default: '2' }, 'prompt-tokens': { type: 'string', default: '2000' },
    'gen-tokens': { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' }, json: { type: 'boolean' },
  },
});

// attention layers, kv heads, head_dim (Qwen3.5: one layer in four is attention)
const SHAPES: [string, number, number, number][] = [
  ['Qwen2.5-0.5B', 24, 2, 64], ['Qwen2.5-7B', 28, 4, 128], ['Qwen3-30B-A3B', 48, 4, 128], ['Qwen3.5-0.8B (6 of 24 layers attention)', 6, 2, 256],
];
const perToken = (t: KvType, layers: number, kvHeads: number, Dh: number) => 2 * layers * 4 * kvRowWords(t, kvHeads * Dh);
const memory = SHAPES.map(([name, l, h, d]) => ({ name, bytes: Object.fromEntries(KV_TYPES.map((t) => [t, perToken(t, l, h, d)])) as Record<KvType, number> }));

const own = values.model === undefined;
const dir = values.model ?? writeRandomQwen2(fs.mkdtempSync(path.join(os.tmpdir(), 'qwen-ts-bench-kv-')));
const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const runs: Record<KvType, BenchResult[]> = { f32: [], f16: [], q8_0: [] };
try {
  for (let r = 0; r < Number(values.rounds); r++) {
    for (let i = 0; i < KV_TYPES.length; i++) {
      const t = KV_TYPES[(i + r) % KV_TYPES.length]!; // each round starts with another type
      const args = [cli, 'bench', '--model', dir, '--threads', values.threads!, '--prompt-tokens', values['prompt-tokens']!, '--gen-tokens', values['gen-tokens']!, '--cache-type', t, '--json'];
      const res = runJson<BenchResult>(process.execPath, args, ROOT);
      runs[t].push(res);
      process.stderr.write(`round ${r + 1} ${t}: prefill ${res.prefill_tps.toFixed(1)} tok/s, decode ${res.decode_tps.toFixed(2)} tok/s, peak RSS ${res.peak_rss_mb.toFixed(0)} MB\n`);
    }
  }
} finally {
  if (own) fs.rmSync(dir, { recursive: true, force: true });
}
const speed = Object.fromEntries(KV_TYPES.map((t) => [t, {
  decode_tps: median(runs[t].map((x) => x.decode_tps)), prefill_tps: median(runs[t].map((x) => x.prefill_tps)),
  decode_all: runs[t].map((x) => +x.decode_tps.toFixed(2)), peak_rss_mb: median(runs[t].map((x) => x.peak_rss_mb)),
}]));
const result = { model: own ? 'random Qwen2.5-0.5B-shaped Q8_0' : dir, threads: Number(values.threads), prompt_tokens: Number(values['prompt-tokens']), gen_tokens: Number(values['gen-tokens']), node: process.version, memory, speed };
if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  const kib = (b: number) => `${(b / 1024).toFixed(2)} KiB`;
  for (const m of memory) process.stdout.write(`${m.name}: ${KV_TYPES.map((t) => `${t} ${kib(m.bytes[t])}`).join(', ')} per token\n`);
  for (const t of KV_TYPES) {
    const s = speed[t]!;
    process.stdout.write(`${t}: decode ${s.decode_tps.toFixed(2)} tok/s (runs ${s.decode_all.join(', ')}), prefill ${s.prefill_tps.toFixed(1)} tok/s, peak RSS ${s.peak_rss_mb.toFixed(0)} MB\n`);
  }
}
