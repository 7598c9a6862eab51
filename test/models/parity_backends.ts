// The backends the parity tests run unchanged on, and a loader that disposes what it made.
import { after } from 'node:test';
import type { Backend } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { loadModel } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';

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
