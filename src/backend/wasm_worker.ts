// The pieces of the job loop every pool worker runs (this file's Node worker and the browser's,
// src/browser/platform.ts), as source text: the control block's protocol is written once.
/** Spin on the job counter ctrl[0] for spinMs, then sleep on it; leaves the new counter in g. */
export const WAIT_FOR_JOB = `
  let g, n = 0, since = 0;
  while ((g = Atomics.load(ctrl, 0)) === seen) {
    if ((++n & 1023) !== 0) continue;
    const now = performance.now();
    if (since === 0) since = now;
    else if (now - since > spinMs) {
      Atomics.add(ctrl, 4, 1);
      Atomics.wait(ctrl, 0, seen);
      Atomics.sub(ctrl, 4, 1);
      since = 0;
    }
  }`;
/** This worker's part of the job in a[] with the kernels `kernels` (an expression); a throw sets ctrl[3] = 1. */
export const runPart = (kernels: string) => `try {
      ${kernels}[a[0]](index, parts, a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14]);
    } catch (e) {
      Atomics.store(ctrl, 3, 1);
    }`;
/** Acknowledge the job (ctrl[1]) and wake the main thread if it sleeps on it (ctrl[5]). */
export const ACK_JOB = `
  Atomics.add(ctrl, 1, 1);
  if (Atomics.load(ctrl, 5)) Atomics.notify(ctrl, 1);`;
/** A failed start: the message into errBuf and ctrl[3] = 2, at once (the main thread is blocked). */
export const reportStartError = (err: string, buf: string) => `const msg = new TextEncoder().encode(String((${err} && ${err}.message) || ${err}).slice(0, 200));
    new Uint8Array(${buf}).set(msg.subarray(0, ${buf}.byteLength));
    Atomics.store(ctrl, 3, 2);
    Atomics.notify(ctrl, 1);`;

// The source of one pool worker, evaluated with `new Worker(src, {eval: true})` so that it runs the
// same way from dist/ and under tsx (no file to resolve). The worker instantiates the shared kernel
// module on the shared memory (and on each memory added later, read from its port when a job
// first names that shard), then loops: spin on the job counter for a while (a hand-off by
// spinning costs well under a microsecond, one through a sleep 10-60 µs), then sleep on it.
//
// ctrl (Int32Array): [0] job counter, [1] acks of the current job, [2] exit flag, [3] error flag
//                    (1 a kernel threw, 2 a worker failed to start), [4] sleeping workers,
//                    [5] main thread sleeping on [1], [6] workers started.
// args (Float64Array): [0] kernel index, [1] parts, [2] shard, [3..] args.
// The body runs inside new Function under a bootstrap that cannot fail to parse: a runtime that
// rejects the body (or a failed instantiation) is reported through ctrl[3] = 2 and the message in
// errBuf at once, since the blocked main thread never sees the worker's 'error' event. The body's
// names are function-local, as Bun and Deno wrap eval'd code in a CommonJS wrapper (module, exports).
const BODY = `
const { receiveMessageOnPort } = wt;
const { module: mod, memory, argsBuf, index, names, spinMs, port } = wd;
const a = new Float64Array(argsBuf);
const shards = []; // per memory: the parallel kernels, by index
function instantiate(mem) {
  const inst = new WebAssembly.Instance(mod, { env: { memory: mem, abort() { throw new Error('wasm abort'); } } });
  shards.push(names.map((n) => inst.exports[n]));
}
// the memories added after start, in order (posted before any job names them)
function kernels(s) {
  const t0 = performance.now();
  while (shards.length <= s) {
    const m = receiveMessageOnPort(port);
    if (m) instantiate(m.message);
    else if (performance.now() - t0 > 10000) throw new Error('no memory for shard ' + s);
  }
  return shards[s];
}
instantiate(memory);
Atomics.add(ctrl, 6, 1);
let seen = 0;
for (;;) {
${WAIT_FOR_JOB}
  seen = g;
  if (Atomics.load(ctrl, 2)) break;
  const parts = a[1];
  if (index < parts && shards.length) {
    ${runPart('kernels(a[2])')}
  }
${ACK_JOB}
}
`;

export const WORKER_SOURCE = `(function () {
  const wt = require('node:worker_threads');
  const wd = wt.workerData;
  const ctrl = new Int32Array(wd.ctrlBuf);
  try {
    new Function('wt', 'wd', 'ctrl', ${JSON.stringify(BODY)})(wt, wd, ctrl);
  } catch (e) {
    ${reportStartError('e', 'wd.errBuf')}
  }
})();
`;
