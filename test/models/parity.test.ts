// Logits parity with llama.cpp's reference logits (test/fixtures/models, see PROVENANCE.md):
// batched prefill, one-token decode through the KV cache, chunked prefill, several sequences in one
// batch, from both the safetensors and the GGUF file of each model (Qwen2, Qwen3, Qwen3.5 hybrid); the same tests, unchanged, on
// the reference backend and on the WebAssembly backend with one and three worker threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CausalLM } from '../../src/models/model.js';
import type { BatchEntry } from '../../src/models/kv_cache.js';
import { argmax, compare, fixtureDir, readF32 } from '../helpers.js';
import { REFERENCE, WASM_X1, WASM_X3, loadOn } from './parity_backends.js';

const ATOL = 1e-3,
  RTOL = 1e-4; // llama.cpp f32 vs float64 numpy differ by < 1e-4 (reference.json)

interface Case {
  name: string;
  prompt_ids: number[];
  greedy_generated_ids: number[];
  prefill_logits_file?: { path: string };
  incremental_logits_file?: { path: string };
}

function reference(dir: string): { cases: Case[] } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
}

const BACKENDS = [REFERENCE, WASM_X1, WASM_X3];
const load = loadOn;

function prefill(m: CausalLM, ids: number[], allLogits = true): Float32Array {
  const cache = m.newCache(256);
  return m.forward(
    ids.map((token, pos) => ({ token, pos, seq: 0, logits: allLogits || pos === ids.length - 1 })),
    [cache],
  );
}

for (const [backendName, backend] of BACKENDS)
  for (const name of ['qwen2-tiny-tied', 'qwen3-tiny-tied', 'qwen35-tiny', 'qwen35-tiny-tied']) {
    const dir = fixtureDir(`models/${name}`);
    const ref = reference(dir);
    for (const file of ['model.safetensors', 'model-f32.gguf']) {
      const src = file.endsWith('.gguf') ? path.join(dir, file) : dir;
      const model = load(src, backend);
      const V = model.config.vocab_size;
      for (const c of ref.cases) {
        const label = `${backendName}: ${name} ${file} case ${c.name}`;
        test(`${label}: batched prefill logits match llama.cpp at every position`, () => {
          const expected = readF32(path.join(dir, c.prefill_logits_file!.path));
          const r = compare(prefill(model, c.prompt_ids), expected, ATOL, RTOL);
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
          assert.equal(cache.length, ids.length);
        });
        test(`${label}: prefill in chunks of 5 then decode matches the one-pass logits`, () => {
          const expected = readF32(path.join(dir, c.incremental_logits_file!.path));
          const ids = [...c.prompt_ids, ...c.greedy_generated_ids];
          const cache = model.newCache(ids.length);
          for (let s = 0; s < ids.length; s += 5) {
            const chunk = ids.slice(s, s + 5).map((token, i) => ({ token, pos: s + i, seq: 0, logits: true }));
            const l = model.forward(chunk, [cache]);
            const r = compare(l, expected.subarray(s * V, (s + chunk.length) * V), ATOL, RTOL);
            assert.ok(r.ok, `chunk at ${s}: max abs diff ${r.maxAbs}`);
          }
        });
      }
      test(`${backendName}: ${name} ${file}: two sequences decoded in one batch give each one's own logits`, () => {
        const [a, b] = ref.cases as [Case, Case];
        const ea = readF32(path.join(dir, a.incremental_logits_file!.path));
        const eb = readF32(path.join(dir, b.incremental_logits_file!.path));
        const ia = [...a.prompt_ids, ...a.greedy_generated_ids];
        const ib = [...b.prompt_ids, ...b.greedy_generated_ids];
        const caches = [model.newCache(256), model.newCache(256)];
        // prefill both prompts in one batch (interleaved), then decode both one token per step
        const batch: BatchEntry[] = [];
        for (let i = 0; i < Math.max(a.prompt_ids.length, b.prompt_ids.length); i++) {
          if (i < a.prompt_ids.length) batch.push({ token: ia[i]!, pos: i, seq: 0, logits: i === a.prompt_ids.length - 1 });
          if (i < b.prompt_ids.length) batch.push({ token: ib[i]!, pos: i, seq: 1, logits: i === b.prompt_ids.length - 1 });
        }
        let l = model.forward(batch, caches);
        const rowA = batch.filter((e) => e.logits)[0]!.seq === 0 ? 0 : 1;
        assert.ok(compare(l.subarray(rowA * V, rowA * V + V), ea.subarray((a.prompt_ids.length - 1) * V, a.prompt_ids.length * V), ATOL, RTOL).ok);
        assert.ok(compare(l.subarray((1 - rowA) * V, (2 - rowA) * V), eb.subarray((b.prompt_ids.length - 1) * V, b.prompt_ids.length * V), ATOL, RTOL).ok);
        for (let step = 0; ; step++) {
          const pa = a.prompt_ids.length + step,
            pb = b.prompt_ids.length + step;
          const entries: BatchEntry[] = [];
          if (pa < ia.length) entries.push({ token: ia[pa]!, pos: pa, seq: 0, logits: true });
          if (pb < ib.length) entries.push({ token: ib[pb]!, pos: pb, seq: 1, logits: true });
          if (!entries.length) break;
          l = model.forward(entries, caches);
          entries.forEach((e, r) => {
            const exp = e.seq === 0 ? ea : eb;
            const res = compare(l.subarray(r * V, (r + 1) * V), exp.subarray(e.pos * V, (e.pos + 1) * V), ATOL, RTOL);
            assert.ok(res.ok, `seq ${e.seq} pos ${e.pos}: max abs diff ${res.maxAbs}`);
          });
        }
      });
    }
  }

for (const [backendName, backend] of BACKENDS)
  for (const [name, vocab] of [
    ['qwen3-tiny-realvocab', 151936],
    ['qwen35-tiny-realvocab', 248320],
  ] as const)
    test(`${backendName}: ${name}: full-vocabulary logits and per-position top-10 match llama.cpp from safetensors and GGUF`, () => {
      const dir = fixtureDir(`models/${name}`);
      const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
      for (const c of ref.cases)
        for (const src of [dir, path.join(dir, 'model-f32.gguf')]) {
          const last = readF32(path.join(dir, c.last_prompt_position_logits_file.path));
          const m = load(src, backend);
          const V = m.config.vocab_size;
          assert.equal(V, vocab);
          const l = prefill(m, c.prompt_ids);
          const r = compare(l.subarray((c.prompt_ids.length - 1) * V), last, ATOL, RTOL);
          assert.ok(r.ok, `${src}: last position max abs diff ${r.maxAbs}`);
          c.prefill_top10_per_position.forEach((t: { ids: number[]; logits: number[] }, pos: number) => {
            t.ids.forEach((id, j) => assert.ok(Math.abs(l[pos * V + id]! - t.logits[j]!) <= ATOL, `${src} pos ${pos} id ${id}`));
            assert.equal(argmax(l, pos * V, V), t.ids[0]);
          });
          // greedy decode through the cache: ids and the top-10 logits of every step
          const cache = m.newCache(64);
          const ids = [...c.prompt_ids, ...c.greedy_generated_ids];
          const greedy: number[] = [];
          ids.forEach((token: number, pos: number) => {
            const lg = m.forward([{ token, pos, seq: 0, logits: true }], [cache]);
            const t = c.incremental_top10_per_step[pos];
            t.ids.forEach((id: number, j: number) => assert.ok(Math.abs(lg[id]! - t.logits[j]!) <= ATOL, `${src} step ${pos} id ${id}`));
            if (pos >= c.prompt_ids.length - 1 && pos < ids.length - 1) greedy.push(argmax(lg));
          });
          assert.deepEqual(greedy, c.greedy_generated_ids);
        }
    });
