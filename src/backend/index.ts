// Choosing a backend by name: the WebAssembly kernels (default for the CLI and server), the same
// without relaxed SIMD, or the plain TypeScript reference (the oracle, slow).
import { fail } from '../errors.js';
import type { Backend } from './backend.js';
import { ReferenceBackend } from './reference.js';
import { WasmBackend } from './wasm.js';
import { platform } from './platform.js';

export const BACKENDS = ['wasm', 'wasm-simd', 'reference'] as const;
export type BackendName = (typeof BACKENDS)[number];

export function createBackend(name = 'wasm', threads = platform().cores()): Backend {
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) fail(`--threads must be an integer from 1 to 256, got '${threads}'`);
  switch (name) {
    case 'reference':
      return new ReferenceBackend();
    case 'wasm':
    case 'wasm-simd':
      return new WasmBackend({ threads, relaxed: name === 'wasm' });
    default:
      fail(`--backend must be one of ${BACKENDS.join(', ')}, got '${name}'`);
  }
}

/** The --backend / --threads options every model-running command takes (node:util parseArgs). */
export const BACKEND_OPTIONS = {
  backend: { type: 'string', default: 'wasm' },
  threads: { type: 'string' },
} as const;

export function backendFromArgs(values: { backend?: string; threads?: string }): Backend {
  const t = values.threads === undefined ? undefined : Number(values.threads);
  if (t !== undefined && !Number.isInteger(t)) fail(`--threads must be an integer, got '${values.threads}'`);
  return createBackend(values.backend, t);
}
