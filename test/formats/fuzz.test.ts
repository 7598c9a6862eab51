// Fuzzing the model readers: a few hundred seeded mutations of the fixture GGUF and safetensors
// files (bit flips, truncations, inflated counts, lengths and offsets, edited safetensors headers)
// must each load and give finite logits, or fail with a clean one-line QwenError: no crash, no
// WebAssembly trap, no NaN, no hang, no allocation over 2 GB. The driver (fuzz_run.ts) runs in a
// child process so its peak memory can be read and a hang is killed by the timeout.
// QWEN_TS_FUZZ_SEED / QWEN_TS_FUZZ_CASES choose another run (the failing case prints its mutation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ROOT, tmpDir } from '../helpers.js';

const SEED = process.env.QWEN_TS_FUZZ_SEED ?? '20261202';
const PER_FILE = process.env.QWEN_TS_FUZZ_CASES ?? '80'; // x 5 fixture files

test(`fuzz: ${PER_FILE} mutations of each of 5 fixture files (seed ${SEED}) end in finite logits or a clean error`, () => {
  const driver = path.join(ROOT, 'dist', 'test', 'formats', 'fuzz_run.js');
  const r = spawnSync(process.execPath, [driver, SEED, PER_FILE, tmpDir()], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  const lines = r.stdout.trim().split('\n');
  assert.equal(r.status, 0, `driver exited ${r.status} (${r.signal ?? ''}) after: ${lines.filter((l) => l.startsWith('case ')).at(-1)}\n${r.stderr.slice(0, 2000)}`);
  const bad = lines.filter((l) => l.startsWith('{"bad"'));
  assert.deepEqual(bad, [], `${bad.length} cases ended badly`);
  const summary = JSON.parse(lines.at(-1)!) as { summary: { ok: number; clean: number; bad: number }; cases: number; maxRssMiB: number };
  assert.equal(summary.cases, 5 * Number(PER_FILE));
  // both outcomes must occur, or the mutations are not reaching the readers
  assert.ok(summary.summary.clean > summary.cases / 5, `clean errors: ${summary.summary.clean}`);
  assert.ok(summary.summary.ok > summary.cases / 10, `loaded fine: ${summary.summary.ok}`);
  assert.ok(summary.maxRssMiB < 2048, `peak RSS ${summary.maxRssMiB} MiB`);
});
