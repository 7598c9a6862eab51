// A pool of persistent worker threads sharing the backend's WebAssembly memories with the main
// thread: each worker holds one kernel instance per memory (shard), made when the memory is added
// (the memory travels on a MessagePort the worker reads synchronously: its loop never yields to
// the event loop). One pool serves every shard, so a model spread over several memories still runs
// on `threads` threads, with no idle pool spinning against the busy one.
// A job is one parallel kernel call: the main thread publishes the shard, kernel index and arguments,
// bumps the job counter (waking sleepers only if there are any), runs part 0 itself, and spins
// until every worker has acknowledged. Workers are unref'd, so they never keep a process alive.
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { WORKER_SOURCE } from './wasm_worker.js';

const MAX_ARGS = 12;

export type Kernel = (part: number, parts: number, ...args: number[]) => void;

export class Pool {
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
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
    const ctrlBuf = new SharedArrayBuffer(8 * 4),
      argsBuf = new SharedArrayBuffer((3 + MAX_ARGS) * 8);
    this.ctrl = new Int32Array(ctrlBuf);
    this.args = new Float64Array(argsBuf);
    for (let i = 1; i < threads; i++) {
      const { port1, port2 } = new MessageChannel();
      port1.unref();
      this.ports.push(port1);
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [], // not the parent's (--input-type=module would make the source ESM, --import tsx is not needed)
        workerData: { module, memory, ctrlBuf, argsBuf, index: i, names, spinMs, port: port2 },
        transferList: [port2],
      });
      w.unref();
      w.on('error', () => Atomics.store(this.ctrl, 3, 2));
      this.workers.push(w);
    }
  }

  /** Another memory (shard `index` = the number added before it + 1): workers instantiate the
   * kernels on it before their first job there. */
  addMemory(memory: WebAssembly.Memory): void {
    for (const p of this.ports) p.postMessage(memory);
  }

  /**
   * Run kernel `name` of shard `shard` split into `parts` (<= threads) parts; `local` is the main
   * thread's own instance of the same kernel (part 0). Arguments are numbers (pointers, sizes, floats).
   */
  run(shard: number, name: number, local: Kernel, parts: number, args: number[]): void {
    if (this.disposed) throw new Error('WasmBackend: used after dispose()');
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
        if (acks < want && Atomics.wait(c, 1, acks, 60_000) === 'timed-out') {
          throw new Error('WasmBackend: a worker thread did not answer within 60 s');
        }
        Atomics.store(c, 5, 0);
      }
    }
    const err = Atomics.load(c, 3);
    if (err) {
      Atomics.store(c, 3, 0);
      throw new Error(err === 2 ? 'WasmBackend: a worker thread failed to start' : `WasmBackend: kernel ${this.names[name]} failed in a worker thread`);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.ctrl, 2, 1);
    Atomics.add(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
  }
}
