// The browser's Platform (src/backend/platform.ts): the kernel modules fetched before the first
// backend is made, threads only when the page is cross-origin isolated, and pool workers as
// nested Web Workers. A pool worker runs the same job loop as Node's (wasm_worker.ts), but it
// cannot read a message synchronously: when a job names a memory it has not received yet, it
// returns to its event loop (the memory was posted before the job), takes it, and goes on.
import { setPlatform, type Platform, type PoolWorker, type PoolWorkerData } from '../backend/platform.js';
import { ACK_JOB, reportStartError, runPart, WAIT_FOR_JOB } from '../backend/wasm_worker.js';

const WORKER = `
let mod, memory, ctrl, a, index, names, spinMs, seen = 0, waiting = false;
const shards = [];
function instantiate(mem) {
  const inst = new WebAssembly.Instance(mod, { env: { memory: mem, abort() { throw new Error('wasm abort'); } } });
  shards.push(names.map((n) => inst.exports[n]));
}
function loop() {
  for (;;) {
${WAIT_FOR_JOB}
    if (Atomics.load(ctrl, 2)) return close();
    const parts = a[1];
    if (index < parts) {
      if (shards.length <= a[2]) { waiting = true; return; } // its memory is in the message queue
      ${runPart('shards[a[2]]')}
    }
    seen = g;
${ACK_JOB}
  }
}
onmessage = (e) => {
  if (e.data instanceof WebAssembly.Memory) {
    instantiate(e.data);
    if (waiting) { waiting = false; loop(); }
    return;
  }
  const d = e.data;
  ctrl = new Int32Array(d.ctrlBuf);
  try {
    mod = d.module; index = d.index; names = d.names; spinMs = d.spinMs; a = new Float64Array(d.argsBuf);
    instantiate(d.memory);
  } catch (err) {
    ${reportStartError('err', 'd.errBuf')}
    return;
  }
  Atomics.add(ctrl, 6, 1);
  postMessage('ready');
  loop();
};
`;

export interface BrowserPlatformOptions {
  /** the folder holding kernels-simd.wasm and kernels-relaxed.wasm */
  kernelsUrl: string | URL;
  fetchFn?: (url: string) => Promise<Response>;
}

/** Why this page runs the kernels on one thread (null: it may use several). */
export function singleThreadReason(): string | null {
  if (!(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated)
    return 'the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), so qwen.ts runs on one thread';
  if (typeof SharedArrayBuffer !== 'function') return 'this browser has no SharedArrayBuffer, so qwen.ts runs on one thread';
  return null;
}

// A nested worker starts only while its parent's event loop runs: a pool job blocks the parent
// (it spins, then sleeps on Atomics.wait) and would wait forever for workers that cannot start.
const starting: Promise<void>[] = [];

/** Resolves when every pool worker started so far has started (await it before the first forward pass). */
export async function poolReady(): Promise<void> {
  await Promise.all(starting.splice(0));
}

/** Fetch the kernels and make them the platform (once per worker). */
export async function useBrowserPlatform(o: BrowserPlatformOptions): Promise<Platform> {
  const get = o.fetchFn ?? ((u: string) => fetch(u));
  const bytes = new Map<string, Uint8Array<ArrayBuffer>>();
  for (const v of ['simd', 'relaxed'] as const) {
    const url = new URL(`kernels-${v}.wasm`, o.kernelsUrl).href;
    const r = await get(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}; the WebAssembly kernels must be served next to qwen.ts's browser build (kernelsUrl)`);
    bytes.set(v, new Uint8Array(await r.arrayBuffer()));
  }
  let workerUrl: string | undefined;
  starting.length = 0;
  const p: Platform = {
    name: 'browser',
    cores: () => (singleThreadReason() ? 1 : Math.max(1, navigator.hardwareConcurrency || 1)),
    kernelBytes: (v) => bytes.get(v) ?? null,
    startPoolWorker(data: PoolWorkerData, onError: (message: string) => void): PoolWorker {
      workerUrl ??= URL.createObjectURL(new Blob([WORKER], { type: 'text/javascript' }));
      const w = new Worker(workerUrl);
      starting.push(
        new Promise<void>((resolve) => {
          w.onmessage = () => resolve();
          w.onerror = (e) => {
            onError(e.message || 'the worker failed to start');
            resolve();
          };
        }),
      );
      w.postMessage(data);
      return {
        addMemory: (m) => w.postMessage(m),
        terminate: () => w.terminate(),
      };
    },
  };
  setPlatform(p);
  return p;
}
