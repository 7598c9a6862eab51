// The LoRA commands as a user runs them: logits --lora, export-lora, merge (GGUF and folder), and
// one-line errors for adapters that do not fit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { servedLoras } from '../../src/cli/resolve.js';
import { readGgufLora } from '../../src/lora/gguf_lora.js';
import { compare, FIXTURES, fixtureDir, PARITY_ATOL, PARITY_RTOL, readF32, ROOT, tmpDir } from '../helpers.js';
import { LORA_PROMPT } from './cases.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const MODEL = fixtureDir('models/qwen3-tiny-tied');
const GGUF = path.join(MODEL, 'model-f32.gguf');
const ADAPTER = path.join(FIXTURES, 'lora', 'qwen3-all7');
const TOKENS = LORA_PROMPT.join(',');
const V = 320;
const work = tmpDir();

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function logits(model: string, ...extra: string[]): number[] {
  const r = cli('logits', '--model', model, '--tokens', TOKENS, ...extra);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out).logits as number[];
}

function userError(r: ReturnType<typeof cli>, re: RegExp) {
  assert.equal(r.code, 1, r.err);
  assert.match(r.err.split('\n')[0]!, re);
  assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace');
}

const llama = readF32(path.join(FIXTURES, 'lora', 'qwen3-all7.llama.f32')).subarray((LORA_PROMPT.length - 1) * V);

test("logits --lora (PEFT folder) = llama.cpp's; export-lora's GGUF gives the same through --lora", () => {
  const got = logits(GGUF, '--lora', ADAPTER);
  assert.ok(compare(got, llama, PARITY_ATOL, PARITY_RTOL).ok);
  const out = path.join(work, 'a.gguf');
  const r = cli('export-lora', ADAPTER, out, '--base', GGUF);
  assert.equal(r.code, 0, r.err);
  assert.equal(readGgufLora(out).modules.length, 14);
  assert.ok(compare(logits(GGUF, '--lora', out), got, 1e-5, 1e-5).ok);
  // --lora-scale 0: the base model
  assert.deepEqual(logits(GGUF, '--lora', ADAPTER, '--lora-scale', '0'), logits(GGUF));
});

test('merge: a GGUF from the F32 base = the adapter applied; a folder from the BF16 HF base loads and is close', () => {
  const out = path.join(work, 'merged.gguf');
  const r = cli('merge', GGUF, ADAPTER, out);
  assert.equal(r.code, 0, r.err);
  assert.ok(compare(logits(out), llama, PARITY_ATOL, PARITY_RTOL).ok);
  const dir = path.join(work, 'merged-hf');
  assert.equal(cli('merge', MODEL, ADAPTER, dir).code, 0);
  assert.ok(fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(path.join(dir, 'tokenizer.json')));
  // BF16 storage rounds the merged weights: close to the exact answer, far from the base model's
  const near = compare(logits(dir), llama, 0).maxAbs,
    base = compare(logits(MODEL), llama, 0).maxAbs;
  assert.ok(near < base / 4, `merged ${near} vs base ${base} from the exact logits`);
});

test('bad adapters and flags are one-line errors', () => {
  userError(
    cli('logits', '--model', fixtureDir('models/qwen2-tiny-tied'), '--tokens', TOKENS, '--lora', ADAPTER),
    /module 'model\.layers\.0\.self_attn\.k_proj' is \[64, 64\] .* but the model's weight is \[32, 64\]/,
  );
  userError(cli('logits', '--model', GGUF, '--tokens', TOKENS, '--lora-scale', '2'), /--lora-scale needs --lora/);
  userError(cli('logits', '--model', GGUF, '--tokens', TOKENS, '--lora', path.join(work, 'nope')), /no such LoRA adapter/);
  userError(cli('export-lora', ADAPTER, path.join(work, 'x.bin')), /must be a \.gguf file/);
  userError(cli('export-lora', ADAPTER, path.join(work, 'x.gguf')), /cannot tell the base model's architecture/);
  userError(cli('merge', GGUF, ADAPTER, path.join(work, 'folder-from-gguf')), /merge it into a \.gguf output/);
});

test('serve --lora NAME=PATH: names checked before anything loads', async () => {
  assert.deepEqual(await servedLoras([`style=${ADAPTER}`, `b=${ADAPTER}`], 'm'), [
    { name: 'style', path: ADAPTER },
    { name: 'b', path: ADAPTER },
  ]);
  assert.equal(await servedLoras(undefined, 'm'), undefined);
  await assert.rejects(servedLoras([ADAPTER], 'm'), /--lora must be NAME=PATH/);
  await assert.rejects(servedLoras([`a=${ADAPTER}`, `a=${ADAPTER}`], 'm'), /'a' is given twice/);
  await assert.rejects(servedLoras([`m=${ADAPTER}`], 'm'), /is the served model's own name/);
});
