// YaRN rope scaling against llama.cpp (test/fixtures/models/qwen3-tiny-yarn and qwen35-tiny-yarn, see
// PROVENANCE.md): tiny models with factor 4 over an original context of 64, prompts of 9 and 120
// tokens, from the GGUF files and the Qwen3 HF copy, on the reference and WebAssembly backends. Then
// YaRN's config errors and --ctx-size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseHfConfig } from '../../src/models/config.js';
import { loadModel } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';
import { argmax, compare, expectError, fixtureDir, readF32, PARITY_ATOL, PARITY_RTOL, ROOT, type RefCase, tmpDir } from '../helpers.js';
import { REFERENCE, WASM_X1, loadOn } from './parity_backends.js';
import { ggufVariant } from './variants.js';

const ATOL = PARITY_ATOL,
  RTOL = PARITY_RTOL;
type Case = RefCase;
const cases = (dir: string) => (JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as { cases: Case[] }).cases;
const want = (dir: string, c: Case, kind: 'prefill' | 'incremental') => readF32(path.join(dir, (kind === 'prefill' ? c.prefill_logits_file : c.incremental_logits_file).path));
const DIR = fixtureDir('models/qwen3-tiny-yarn'),
  DIR35 = fixtureDir('models/qwen35-tiny-yarn');
const GGUF = path.join(DIR, 'model-f32.gguf'),
  GGUF35 = path.join(DIR35, 'model-f32.gguf');
const CASES = cases(DIR);
const LONG = CASES.find((c) => c.name === 'B')!; // 120 prompt tokens: past the original context of 64
const YARN = { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, beta_fast: 32, beta_slow: 1, attention_factor: 1 + 0.1 * Math.log(4), truncate: true };
const work = tmpDir();

function prefill(m: CausalLM, ids: number[]): Float32Array {
  return m.forward(
    ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
    [m.newCache(256)],
  );
}

test('the YaRN fixtures ask for what the tests need: prompts past the original context, the HF configs as the GGUF files', () => {
  assert.ok(LONG.prompt_ids.length > 64 && cases(DIR35).some((c) => c.prompt_ids.length > 64));
  for (const src of [GGUF, DIR, GGUF35, path.join(DIR35, 'config.json')]) {
    const c = src.endsWith('config.json') ? parseHfConfig(JSON.parse(fs.readFileSync(src, 'utf8')), src) : loadModel(src, { onNote: () => {} }).config;
    assert.deepEqual(c.rope_scaling, YARN, src);
    assert.equal(c.max_position_embeddings, 256, "factor x original (vLLM), not the files' 64");
  }
});

const MODELS: [string, string, string][] = [
  ['qwen3-tiny-yarn model-f32.gguf', DIR, GGUF],
  ['qwen3-tiny-yarn HF folder', DIR, DIR],
  ['qwen35-tiny-yarn model-f32.gguf', DIR35, GGUF35],
];
for (const [backendName, backend] of [REFERENCE, WASM_X1])
  for (const [name, dir, src] of MODELS) {
    const model = loadOn(src, backend);
    const V = model.config.vocab_size;
    const label = `${backendName}: ${name}`;
    test(`${label}: batched prefill logits match llama.cpp at every position, past the original context too`, () => {
      for (const c of cases(dir)) {
        const r = compare(prefill(model, c.prompt_ids), want(dir, c, 'prefill'), ATOL, RTOL);
        assert.ok(r.ok, `case ${c.name}: max abs diff ${r.maxAbs} at position ${Math.floor(r.worst / V)}`);
      }
    });
    test(`${label}: prefill in chunks of 7, then greedy decode through the KV cache, match llama.cpp`, () => {
      const c = cases(dir).find((x) => x.name === 'B')!,
        expected = want(dir, c, 'incremental');
      const ids = [...c.prompt_ids, ...c.greedy_generated_ids];
      const P = c.prompt_ids.length,
        steps: [number, number][] = []; // [first position, tokens]
      for (let s = 0; s < P; s += 7) steps.push([s, Math.min(7, P - s)]);
      for (let s = P; s < ids.length; s++) steps.push([s, 1]);
      const cache = model.newCache(256),
        greedy: number[] = [];
      for (const [s, n] of steps) {
        const l = model.forward(
          ids.slice(s, s + n).map((token, i) => ({ token, pos: s + i, seq: 0, logits: true })),
          [cache],
        );
        const r = compare(l, expected.subarray(s * V, (s + n) * V), ATOL, RTOL);
        assert.ok(r.ok, `from position ${s}: max abs diff ${r.maxAbs}`);
        if (s + n >= P && s + n < ids.length) greedy.push(argmax(l, (n - 1) * V, V)); // predicts ids[s + n]
      }
      assert.deepEqual(greedy, c.greedy_generated_ids);
    });
  }

test('without its rope scaling the same weights disagree with llama.cpp (the scaling is what the test checks)', () => {
  const plain = ggufVariant(GGUF, path.join(work, 'plain.gguf'), (m) => {
    for (let i = m.length - 1; i >= 0; i--) if (m[i]!.key.includes('rope.scaling')) m.splice(i, 1);
  });
  const m = loadModel(plain, { onNote: () => {} });
  assert.equal(m.config.rope_scaling, undefined);
  const r = compare(prefill(m, LONG.prompt_ids), want(DIR, LONG, 'prefill'), ATOL, RTOL);
  assert.ok(!r.ok && r.maxAbs > 0.05, `max abs diff ${r.maxAbs}`);
});

// --- config errors: one line naming the field or key ---

const CONFIG = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
const yarnCfg = (rope: Record<string, unknown>, field = 'rope_scaling') => {
  const c = structuredClone(CONFIG);
  delete c.rope_scaling;
  c[field] = rope;
  return c;
};

test('config.json: yarn factor <= 1, a missing original context and unknown yarn fields are refused, naming the field', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ rope_type: 'yarn', factor: 1, original_max_position_embeddings: 64 }, /field 'rope_scaling.factor' = 1: a yarn factor must be greater than 1/],
    [{ type: 'yarn', factor: 0.5, original_max_position_embeddings: 64 }, /field 'rope_scaling.factor' = 0.5: a yarn factor must be greater than 1/],
    [{ type: 'yarn', factor: -2, original_max_position_embeddings: 64 }, /field 'rope_scaling.factor' must be a positive number/],
    [{ type: 'yarn', original_max_position_embeddings: 64 }, /field 'rope_scaling.factor' is missing/],
    [{ rope_type: 'yarn', factor: 4 }, /field 'rope_scaling.original_max_position_embeddings' is missing/],
    [{ rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, extrapolation_factor: 1 }, /field 'rope_scaling.extrapolation_factor' is not a yarn rope-scaling field/],
    [{ rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, truncate: 'yes' }, /field 'rope_scaling.truncate' must be true or false/],
  ];
  for (const [rope, re] of cases) expectError(() => parseHfConfig(yarnCfg(rope), 'config.json'), re);
  expectError(
    () => parseHfConfig(yarnCfg({ rope_type: 'yarn', factor: 1, original_max_position_embeddings: 64, rope_theta: 1e6 }, 'rope_parameters'), 'config.json'),
    /field 'rope_parameters.factor' = 1/,
  );
});

test("config.json: transformers' optional yarn fields are applied (attention_factor, mscale pair, betas)", () => {
  const base = { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64 };
  let c = parseHfConfig(yarnCfg({ ...base, attention_factor: 1.5, beta_fast: 16, beta_slow: 2, truncate: false }), 'config.json');
  assert.deepEqual(c.rope_scaling, { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, beta_fast: 16, beta_slow: 2, attention_factor: 1.5, truncate: false });
  c = parseHfConfig(yarnCfg({ ...base, mscale: 0.5, mscale_all_dim: 0.5 }, 'rope_parameters'), 'config.json');
  assert.equal(c.rope_scaling?.attention_factor, 1); // DeepSeek-style ratio of equal mscales
});

test('GGUF: yarn factor <= 1, a missing original context or factor, and llama.cpp keys Qwen has no use for are refused', () => {
  const set = (edits: Record<string, [string, unknown] | null>) => (m: { key: string; type: unknown; value: unknown }[]) => {
    for (const [k, v] of Object.entries(edits)) {
      const i = m.findIndex((e) => e.key === `qwen3.rope.scaling.${k}`);
      if (i >= 0) m.splice(i, 1);
      if (v) m.push({ key: `qwen3.rope.scaling.${k}`, type: v[0], value: v[1] });
    }
  };
  const cases: [Record<string, [string, unknown] | null>, RegExp][] = [
    [{ factor: ['f32', 1] }, /metadata 'qwen3.rope.scaling.factor' = 1: a yarn factor must be greater than 1/],
    [{ factor: null }, /metadata 'qwen3.rope.scaling.factor' is missing/],
    [{ original_context_length: null }, /metadata 'qwen3.rope.scaling.original_context_length' is missing/],
    [{ type: ['str', 'longrope'] }, /metadata 'qwen3.rope.scaling.type' is 'longrope': only 'yarn'/],
    [{ yarn_log_multiplier: ['f32', 0.5] }, /metadata 'qwen3.rope.scaling.yarn_log_multiplier' = 0.5 is not implemented/],
    [{ type: null, factor: ['f32', 2] }, /'qwen3.rope.scaling.factor' = 2 with no rope.scaling.type: .*linear/],
  ];
  cases.forEach(([edits, re], i) => {
    const f = ggufVariant(GGUF, path.join(work, `bad${i}.gguf`), set(edits) as Parameters<typeof ggufVariant>[2]);
    expectError(() => loadModel(f, { onNote: () => {} }), re);
  });
});

test('Qwen3.5: yarn in rope_parameters next to its M-RoPE fields is read; factor <= 1 is refused there too', () => {
  const c = JSON.parse(fs.readFileSync(path.join(DIR35, 'config.json'), 'utf8'));
  c.rope_parameters.factor = 1;
  expectError(() => parseHfConfig(c, 'config.json'), /field 'rope_parameters.factor' = 1: a yarn factor must be greater than 1/);
  c.rope_parameters.factor = 4;
  c.rope_parameters.extrapolation_factor = 1;
  expectError(() => parseHfConfig(c, 'config.json'), /field 'rope_parameters.extrapolation_factor' is not a yarn rope-scaling field/);
  const g = ggufVariant(GGUF35, path.join(work, 'q35.gguf'), (m) => {
    m.find((e) => e.key === 'qwen35.rope.scaling.factor')!.value = 0.5;
  });
  expectError(() => loadModel(g, { onNote: () => {} }), /metadata 'qwen35.rope.scaling.factor' = 0.5: a yarn factor must be greater than 1/);
});

// --- --ctx-size ---

test("LoadOptions.ctxSize caps the context, leaves the logits alone, and may not exceed the model's", () => {
  const m = loadModel(GGUF, { ctxSize: 130, onNote: () => {} });
  assert.equal(m.config.max_position_embeddings, 130);
  assert.equal(m.newCache().capacity, 130);
  const r = compare(prefill(m, LONG.prompt_ids), want(DIR, LONG, 'prefill'), ATOL, RTOL); // YaRN does not depend on it
  assert.ok(r.ok, `max abs diff ${r.maxAbs}`);
  expectError(() => loadModel(GGUF, { ctxSize: 257 }), /--ctx-size 257 is larger than the model's context of 256 tokens/);
  expectError(() => loadModel(DIR, { ctxSize: 0 }), /--ctx-size must be a positive integer/);
});

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--ctx-size on logits, bench and run: applied, and a bad or too large value is one line naming both figures', () => {
  const ids = LONG.prompt_ids.slice(0, 70).join(',');
  let r = cli('logits', '--model', GGUF, '--tokens', ids, '--ctx-size', '100');
  assert.equal(r.code, 0, r.err);
  const V = 275,
    got = (JSON.parse(r.out) as { logits: number[] }).logits;
  const c = compare(got, want(DIR, LONG, 'prefill').subarray(69 * V, 70 * V), ATOL, RTOL);
  assert.ok(c.ok, `max abs diff ${c.maxAbs}`);
  r = cli('logits', '--model', GGUF, '--tokens', ids, '--ctx-size', '64');
  assert.equal(r.code, 1);
  assert.match(r.err, /--tokens has 70 tokens, more than the --ctx-size context of 64/);
  const runs: Record<string, string[]> = {
    logits: ['logits', '--model', GGUF, '--tokens', '1,2', '--ctx-size'],
    bench: ['bench', '--model', GGUF, '--prompt-tokens', '4', '--gen-tokens', '1', '--ctx-size'],
    run: ['run', GGUF, 'Hello', '--max-tokens', '1', '--ctx-size'],
  };
  for (const [name, args] of Object.entries(runs)) {
    r = cli(...args, '1000');
    assert.equal(r.code, 1, name);
    assert.equal(r.err.trim().split('\n').length, 1, `${name}: ${r.err}`);
    assert.match(r.err, /--ctx-size 1000 is larger than the model's context of 256 tokens/, name);
    r = cli(...args, 'lots');
    assert.equal(r.code, 1, name);
    assert.match(r.err, /--ctx-size must be a positive integer, got 'lots'/, name);
  }
  r = cli('bench', '--model', GGUF, '--prompt-tokens', '100', '--gen-tokens', '1', '--ctx-size', '64');
  assert.equal(r.code, 1);
  assert.match(r.err, /--prompt-tokens \+ --gen-tokens \+ 1 exceeds the --ctx-size context \(64\)/);
});
