// What the WebAssembly backend needs from its runtime, behind one small interface, so that the
// backend itself imports no Node module and runs in a browser too: the number of cores, the
// compiled kernel bytes, engine flags, and the worker threads of the pool.
// Node, Bun and Deno get platform_node.ts (their modules through process.getBuiltinModule, so no
// `node:` import sits in the shared import graph); a browser sets src/browser/platform.ts first.
import { nodePlatform } from './platform_node.js';

/** What one pool worker starts with (see wasm_worker.ts for the shared control block). */
export interface PoolWorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrlBuf: SharedArrayBuffer;
  argsBuf: SharedArrayBuffer;
  errBuf: SharedArrayBuffer;
  index: number;
  names: readonly string[];
  spinMs: number;
}

export interface PoolWorker {
  /** another memory (shard) the worker instantiates the kernels on before a job names it */
  addMemory(memory: WebAssembly.Memory): void;
  terminate(): void;
}

export interface Platform {
  readonly name: string;
  /** the default thread count */
  cores(): number;
  /** kernels-<variant>.wasm, or null when this platform has none */
  kernelBytes(variant: 'simd' | 'relaxed'): Uint8Array<ArrayBuffer> | null;
  /** called once before the first module is compiled (Node: the optimising tier up front) */
  beforeCompile?(): void;
  /** called when the relaxed-SIMD module does not validate (Node 20: turn its flag on) */
  enableRelaxedSimd?(): void;
  /** start pool worker `data.index`; `onError` reports a worker that failed outside a job */
  startPoolWorker(data: PoolWorkerData, onError: (message: string) => void): PoolWorker;
}

let current: Platform | undefined;

/** Use `p` from now on (a browser entry does this before making a backend). */
export function setPlatform(p: Platform): void {
  current = p;
}

export function platform(): Platform {
  if (current) return current;
  const p = nodePlatform();
  if (!p) throw new Error('qwen.ts: this runtime has no Node modules and no platform was set; in a browser, import qwen-ts/browser');
  return (current = p);
}
