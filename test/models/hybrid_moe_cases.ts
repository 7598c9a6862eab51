// The logits tests Qwen3.5-MoE (qwen35moe.test.ts) and Qwen3-Next (qwen3next.test.ts) share: a
// fixture folder's llama.cpp logits (reference.json, see PROVENANCE.md) against ours at every
// position, one batch, token by token, and four sequences of different lengths decoded together
// in one batch, for its F32 and Q8_0 GGUF files and its HF copies (per-expert and fused experts),
// on the reference backend and on wasm with one and three threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CausalLM } from '../../src/models/model.js';
import type { BatchEntry } from '../../src/models/kv_cache.js';
import { argmax, compare, fixtureDir, readF32, relErr } from '../helpers.js';
import { REFERENCE, WASM_X1, WASM_X3, loadOn } from './parity_backends.js';

interface File {
  path: string;
}
interface Case {
  name: string;
  prompt_ids: number[];
  greedy_generated_ids: number[];
  greedy_generated_ids_q8_0: number[];
  prefill_logits_file: File;
  incremental_logits_file: File;
  prefill_logits_q8_0_file: File;
  incremental_logits_q8_0_file: File;
}

/** How close our logits must be to llama.cpp's on one file type. */
export interface Bounds {
  atol: number;
  rtol: number;
  relRms: number;
}
// F32: llama.cpp and the float64 cross-checks (reference.json) differ by <= 6e-7 on these files; we
// (every backend, file and layout) by max abs 6.7e-7, relative RMS 6.1e-7 (logits of size ~0.5).
// Bounds: the dense tests' per-value ones, and a relative RMS 16x the measured one.
export const F32: Bounds = { atol: 1e-3, rtol: 1e-4, relRms: 1e-5 };

function check(got: Float32Array, want: Float32Array, b: Bounds, what: string, V: number): void {
  const r = compare(got, want, b.atol, b.rtol);
  assert.ok(r.ok, `${what}: max abs diff ${r.maxAbs} (row ${Math.floor(r.worst / V)})`);
  assert.ok(relErr(got, want) <= b.relRms, `${what}: relative RMS ${relErr(got, want)}`);
  // the greedy choice agrees wherever llama.cpp's top two are further apart than the bound
  for (let p = 0; p < want.length / V; p++) {
    const row = want.subarray(p * V, (p + 1) * V),
      top = Float32Array.from(row).sort().reverse();
    if (top[0]! - top[1]! > 2 * b.atol) assert.equal(argmax(got, p * V, V), argmax(row), `${what}: argmax at row ${p}`);
  }
}

/**
 * Register the tests of fixture `name`: `sources` are the files to load (relative to the folder:
 * '.' = its HF copy), each with the file type its logits are llama.cpp's on.
 */
export function hybridMoeTests(name: string, sources: [src: string, type: 'f32' | 'q8_0', bounds: Bounds][], modelType: string): void {
  const dir = fixtureDir(`models/${name}`);
  const cases: Case[] = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')).cases;
  for (const [bn, backend] of [REFERENCE, WASM_X1, WASM_X3])
    for (const [src, type, b] of sources) {
      const label = `${bn}: ${name}/${src}`;
      const q8 = type === 'q8_0';
      const files = (c: Case) => ({
        prefill: readF32(path.join(dir, (q8 ? c.prefill_logits_q8_0_file : c.prefill_logits_file).path)),
        incremental: readF32(path.join(dir, (q8 ? c.incremental_logits_q8_0_file : c.incremental_logits_file).path)),
        ids: [...c.prompt_ids, ...(q8 ? c.greedy_generated_ids_q8_0 : c.greedy_generated_ids)],
      });
      let model: CausalLM | undefined;
      const m = () => (model ??= loadOn(path.join(dir, src), backend));

      test(`${label}: ${modelType}, one batch: logits agree with llama.cpp's at every position`, () => {
        assert.equal(m().config.model_type, modelType);
        const V = m().config.vocab_size;
        for (const c of cases) {
          const l = m().forward(
            c.prompt_ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
            [m().newCache(64)],
          );
          check(l, files(c).prefill, b, `case ${c.name}`, V);
        }
      });

      test(`${label}: token by token through the caches: logits and greedy ids agree with llama.cpp's`, () => {
        const V = m().config.vocab_size;
        for (const c of cases) {
          const { incremental, ids } = files(c);
          const cache = m().newCache(64),
            got = new Float32Array(ids.length * V);
          ids.forEach((token, pos) => got.set(m().forward([{ token, pos, seq: 0, logits: true }], [cache]), pos * V));
          check(got, incremental, b, `case ${c.name}`, V);
          const n = c.prompt_ids.length;
          if (!q8)
            assert.deepEqual(
              ids.slice(n).map((_, i) => argmax(got, (n - 1 + i) * V, V)),
              ids.slice(n),
              `case ${c.name}: greedy ids`,
            );
        }
      });

      test(`${label}: four sequences of different lengths prefill and decode together in one batch`, () => {
        const V = m().config.vocab_size;
        const want = cases.map((c) => files(c));
        const caches = cases.map(() => m().newCache(64));
        const got = want.map((w) => new Float32Array(w.incremental.length));
        const fed = cases.map(() => 0);
        // each step: every sequence adds up to 3 + 2s tokens first, then one, rows interleaved
        for (let step = 0; fed.some((f, s) => f < want[s]!.ids.length); step++) {
          const batch: BatchEntry[] = [];
          for (let k = 0; k < 9; k++)
            cases.forEach((_, s) => {
              if (k < (step === 0 ? 3 + 2 * s : 1) && fed[s]! < want[s]!.ids.length) batch.push({ token: want[s]!.ids[fed[s]!]!, pos: fed[s]!++, seq: s, logits: true });
            });
          const l = m().forward(batch, caches);
          batch.forEach((e, r) => got[e.seq]!.set(l.subarray(r * V, (r + 1) * V), e.pos * V));
        }
        cases.forEach((c, s) => check(got[s]!, want[s]!.incremental, b, `case ${c.name}`, V));
      });
    }
}
