// The backends the parity tests run unchanged on, and a loader that disposes what it made.
import { after } from 'node:test';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { loadModel } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';
import { argmax } from '../helpers.js';

// short spins: three threads on fewer cores must not wait out long spin phases
export const REFERENCE: [string, () => Backend] = ['reference', () => new ReferenceBackend()];
export const WASM_X1: [string, () => Backend] = ['wasm x1', () => new WasmBackend({ threads: 1, spinMs: 0.05 })];
// poison: allocations read NaN until written, so an op reading a buffer first would fail
export const WASM_X3: [string, () => Backend] = ['wasm x3', () => new WasmBackend({ threads: 3, grain: 1e-9, spinMs: 0.05, poison: true })];

const made: Backend[] = [];
after(() => made.forEach((b) => b.dispose?.()));

/** Load `src` on a fresh backend from `backend` (disposed when the test file ends). */
export function loadOn(src: string, backend: () => Backend): CausalLM {
  const b = backend();
  made.push(b);
  return loadModel(src, { backend: b, onNote: () => {} });
}

/**
 * Our logits on `model` against llama.cpp's (`want(caseName)`: its prefill logits at every
 * position of that prompt): positions whose argmax agrees, and the relative RMS of the difference.
 */
export function agreement(model: CausalLM, cases: readonly { name: string; prompt_ids: number[] }[], want: (name: string) => Float32Array): { same: number; n: number; rel: number } {
  const V = model.config.vocab_size;
  let same = 0,
    n = 0,
    d2 = 0,
    w2 = 0;
  for (const c of cases) {
    const w = want(c.name);
    const l = model.forward(
      c.prompt_ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
      [model.newCache(256)],
    );
    if (l.length !== w.length) throw new Error(`case ${c.name}: ${l.length} logits, llama.cpp has ${w.length}`);
    for (let p = 0; p < c.prompt_ids.length; p++, n++) if (argmax(l, p * V, V) === argmax(w, p * V, V)) same++;
    for (let i = 0; i < w.length; i++) {
      d2 += (l[i]! - w[i]!) ** 2;
      w2 += w[i]! ** 2;
    }
  }
  return { same, n, rel: Math.sqrt(d2 / w2) };
}
