// A pool of persistent worker threads sharing the backend's WebAssembly memories with the main
// thread: each worker holds one kernel instance per memory (shard), made when the memory is added
// (the memory travels on a MessagePort the worker reads synchronously: its loop never yields to
// the event loop). One pool serves every shard, so a model spread over several memories still runs
// on `threads` threads, with no idle pool spinning against the busy one.
// A job is one parallel kernel call: the main thread publishes the shard, kernel index and arguments,
// bumps the job counter (waking sleepers only if there are any), runs part 0 itself, and spins
// until every worker has acknowledged. Workers are unref'd, so they never keep a process alive.
import { fail } from '../errors.js';
import { platform, type PoolWorker } from './platform.js';

const MAX_ARGS = 12;
/** how long the first jobs wait for workers that have not started (neither up nor failed) */
const START_MS = 20_000;

/** Why worker threads cannot run here (a runtime without shared memory or Atomics.wait), or null. */
export function threadsUnsupported(): string | null {
  if (typeof SharedArrayBuffer !== 'function') return 'SharedArrayBuffer is not available';
  if (typeof Atomics?.wait !== 'function') return 'Atomics.wait is not available';
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch {
    return 'shared WebAssembly memory is not supported';
  }
  return null;
}

export type Kernel = (part: number, parts: number, ...args: number[]) => void;

export class Pool {
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: PoolWorker[] = [];
  private readonly errBytes: Uint8Array;
  private readonly started = performance.now();
  private broken: string | null = null;
  private disposed = false;

  /** threads counts the main thread: threads - 1 workers are started. */
  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    readonly threads: number,
    private readonly names: readonly string[],
    spinMs = 2,
    private readonly waitAfterMs = 2,
  ) {
    if (threads > 1) {
      const why = threadsUnsupported();
      if (why) fail(`WasmBackend: ${threads} threads need worker threads on shared memory, but in this runtime ${why}; use --threads 1`);
    }
    // one thread needs no shared memory (a browser page that is not cross-origin isolated has none)
    const Buf = threads > 1 ? SharedArrayBuffer : (ArrayBuffer as unknown as typeof SharedArrayBuffer);
    const ctrlBuf = new Buf(8 * 4),
      argsBuf = new Buf((3 + MAX_ARGS) * 8),
      errBuf = new Buf(256);
    this.ctrl = new Int32Array(ctrlBuf);
    this.args = new Float64Array(argsBuf);
    this.errBytes = new Uint8Array(errBuf);
    const p = threads > 1 ? platform() : undefined;
    for (let i = 1; i < threads; i++) {
      const w = p!.startPoolWorker({ module, memory, ctrlBuf, argsBuf, errBuf, index: i, names, spinMs }, (message) => {
        this.broken ??= `WasmBackend: a worker thread failed: ${message}; use --threads 1`;
        Atomics.store(this.ctrl, 3, 2);
      });
      this.workers.push(w);
    }
  }

  /** Another memory (shard `index` = the number added before it + 1): workers instantiate the
   * kernels on it before their first job there. */
  addMemory(memory: WebAssembly.Memory): void {
    for (const w of this.workers) w.addMemory(memory);
  }

  /**
   * Run kernel `name` of shard `shard` split into `parts` (<= threads) parts; `local` is the main
   * thread's own instance of the same kernel (part 0). Arguments are numbers (pointers, sizes, floats).
   */
  run(shard: number, name: number, local: Kernel, parts: number, args: number[]): void {
    if (this.disposed) throw new Error('WasmBackend: used after dispose()');
    if (this.broken) fail(this.broken);
    if (parts <= 1 || this.workers.length === 0) {
      local(0, 1, ...args);
      return;
    }
    const a = this.args,
      c = this.ctrl;
    a[0] = name;
    a[1] = parts;
    a[2] = shard;
    for (let i = 0; i < args.length; i++) a[3 + i] = args[i]!;
    Atomics.store(c, 1, 0);
    Atomics.add(c, 0, 1);
    if (Atomics.load(c, 4) > 0) Atomics.notify(c, 0);
    local(0, parts, ...args);
    // Spin briefly (workers usually finish within microseconds of us), then sleep on the ack
    // counter: if another process holds a core, spinning would only steal time from the worker.
    const want = this.workers.length;
    let n = 0,
      t0 = 0;
    for (let acks = Atomics.load(c, 1); acks < want; acks = Atomics.load(c, 1)) {
      if ((++n & 255) !== 0) continue;
      if (Atomics.load(c, 3)) break;
      const now = performance.now();
      if (t0 === 0) t0 = now;
      else if (now - t0 > this.waitAfterMs) {
        Atomics.store(c, 5, 1);
        acks = Atomics.load(c, 1);
        // in slices, so that a worker failing to start (flag 3, which a notify may miss) ends the wait
        if (acks < want && Atomics.wait(c, 1, acks, 50) === 'timed-out') {
          const notUp = Atomics.load(c, 6) < want && performance.now() - this.started > START_MS;
          if (notUp || now - t0 > 60_000) {
            this.broken = notUp
              ? `WasmBackend: ${want - Atomics.load(c, 6)} worker thread(s) did not start within ${START_MS / 1000} s; use --threads 1`
              : 'WasmBackend: a worker thread did not answer within 60 s';
            fail(this.broken);
          }
        }
        Atomics.store(c, 5, 0);
      }
    }
    const err = Atomics.load(c, 3);
    if (err === 2) {
      const msg = new TextDecoder().decode(this.errBytes.slice()).replace(/\0+$/, '');
      this.broken ??= `WasmBackend: a worker thread failed to start: ${msg || 'unknown error'}; use --threads 1`;
      fail(this.broken);
    }
    if (err) {
      Atomics.store(c, 3, 0);
      throw new Error(`WasmBackend: kernel ${this.names[name]} failed in a worker thread`);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.ctrl, 2, 1);
    Atomics.add(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
    for (const w of this.workers) w.terminate();
  }
}
