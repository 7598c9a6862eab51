// The engine-core llama.cpp parity cases (test/models/parity.test.ts) re-run on the WebAssembly
// backend, with the same tolerances (atol 1e-3, rtol 1e-4; the fixtures have F32 weights), on
// one thread and on three (more threads than the tiny matrices have row blocks).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';
import type { BatchEntry } from '../../src/models/kv_cache.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { argmax, compare, fixtureDir, readF32 } from '../helpers.js';

const ATOL = 1e-3, RTOL = 1e-4;

interface Case { name: string; prompt_ids: number[]; greedy_generated_ids: number[]; prefill_logits_file?: { path: string }; incremental_logits_file?: { path: string } }

const backends: WasmBackend[] = [];
after(() => backends.forEach((b) => b.dispose()));

function load(src: string, threads: number): CausalLM {
  const be = new WasmBackend({ threads, grain: 1e-9, spinMs: 0.05 }); // short spins: 3 threads on fewer cores
  backends.push(be);
  return loadModel(src, { backend: be });
}

for (const name of ['qwen2-tiny-tied', 'qwen3-tiny-tied']) {
  const dir = fixtureDir(`models/${name}`);
  const ref: { cases: Case[] } = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
  for (const file of ['model.safetensors', 'model-f32.gguf']) {
    for (const threads of [1, 3]) {
      const src = file.endsWith('.gguf') ? path.join(dir, file) : dir;
      const model = load(src, threads);
      const V = model.config.vocab_size;
      for (const c of ref.cases) {
        const label = `wasm x${threads} ${name} ${file} case ${c.name}`;
        test(`${label}: batched prefill logits match llama.cpp at every position`, () => {
          const expected = readF32(path.join(dir, c.prefill_logits_file!.path));
          const cache = model.newCache(256);
          const l = model.forward(c.prompt_ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })), [cache]);
          const r = compare(l, expected, ATOL, RTOL);
          assert.ok(r.ok, `max abs diff ${r.maxAbs} at ${r.worst}`);
        });
        test(`${label}: incremental decode through the KV cache matches llama.cpp, greedy ids too`, () => {
          const expected = readF32(path.join(dir, c.incremental_logits_file!.path));
          const ids = [...c.prompt_ids, ...c.greedy_generated_ids];
          const cache = model.newCache(256);
          const greedy: number[] = [];
          ids.forEach((token, pos) => {
            const l = model.forward([{ token, pos, seq: 0, logits: true }], [cache]);
            const r = compare(l, expected.subarray(pos * V, (pos + 1) * V), ATOL, RTOL);
            assert.ok(r.ok, `position ${pos}: max abs diff ${r.maxAbs}`);
            if (pos >= c.prompt_ids.length - 1 && pos < ids.length - 1) greedy.push(argmax(l));
          });
          assert.deepEqual(greedy, c.greedy_generated_ids);
        });
        test(`${label}: prefill in chunks of 5 then decode matches the one-pass logits`, () => {
          const expected = readF32(path.join(dir, c.incremental_logits_file!.path));
          const ids = [...c.prompt_ids, ...c.greedy_generated_ids];
          const cache = model.newCache(ids.length);
          for (let s = 0; s < ids.length; s += 5) {
            const chunk = ids.slice(s, s + 5).map((token, i) => ({ token, pos: s + i, seq: 0, logits: true }));
            const r = compare(model.forward(chunk, [cache]), expected.subarray(s * V, (s + chunk.length) * V), ATOL, RTOL);
            assert.ok(r.ok, `chunk at ${s}: max abs diff ${r.maxAbs}`);
          }
        });
      }
      test(`wasm x${threads} ${name} ${file}: two sequences decoded in one batch give each one's own logits`, () => {
        const [a, b] = ref.cases as [Case, Case];
        const ea = readF32(path.join(dir, a.incremental_logits_file!.path));
        const eb = readF32(path.join(dir, b.incremental_logits_file!.path));
        const ia = [...a.prompt_ids, ...a.greedy_generated_ids], ib = [...b.prompt_ids, ...b.greedy_generated_ids];
        const caches = [model.newCache(256), model.newCache(256)];
        for (let pos = 0; pos < Math.max(ia.length, ib.length); pos++) {
          const entries: BatchEntry[] = [];
          if (pos < ia.length) entries.push({ token: ia[pos]!, pos, seq: 0, logits: true });
          if (pos < ib.length) entries.push({ token: ib[pos]!, pos, seq: 1, logits: true });
          const l = model.forward(entries, caches);
          entries.forEach((e, r) => {
            const exp = e.seq === 0 ? ea : eb;
            const res = compare(l.subarray(r * V, (r + 1) * V), exp.subarray(e.pos * V, (e.pos + 1) * V), ATOL, RTOL);
            assert.ok(res.ok, `seq ${e.seq} pos ${e.pos}: max abs diff ${res.maxAbs}`);
          });
        }
      });
    }
  }
}

test('wasm qwen3-tiny-realvocab: full-vocabulary logits and greedy decode match llama.cpp', () => {
  const dir = fixtureDir('models/qwen3-tiny-realvocab');
  const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
  const c = ref.cases[0];
  const last = readF32(path.join(dir, c.last_prompt_position_logits_file.path));
  const m = load(path.join(dir, 'model-f32.gguf'), 2);
  const V = m.config.vocab_size;
  const l = m.forward(c.prompt_ids.map((token: number, pos: number) => ({ token, pos, seq: 0, logits: true })), [m.newCache(64)]);
  const r = compare(l.subarray((c.prompt_ids.length - 1) * V), last, ATOL, RTOL);
  assert.ok(r.ok, `last position max abs diff ${r.maxAbs}`);
  c.prefill_top10_per_position.forEach((t: { ids: number[]; logits: number[] }, pos: number) => {
    t.ids.forEach((id, j) => assert.ok(Math.abs(l[pos * V + id]! - t.logits[j]!) <= ATOL, `pos ${pos} id ${id}`));
  });
  const cache = m.newCache(64);
  const ids = [...c.prompt_ids, ...c.greedy_generated_ids];
  const greedy: number[] = [];
  ids.forEach((token: number, pos: number) => {
    const lg = m.forward([{ token, pos, seq: 0, logits: true }], [cache]);
    if (pos >= c.prompt_ids.length - 1 && pos < ids.length - 1) greedy.push(argmax(lg));
  });
  assert.deepEqual(greedy, c.greedy_generated_ids);
});
