// The source of one pool worker, evaluated with `new Worker(src, {eval: true})` so that it runs the
// same way from dist/ and under tsx (no file to resolve). The worker instantiates the shared kernel
// module on the shared memory (and on each memory added later, read from its port when a job
// first names that shard), then loops: spin on the job counter for a while (a hand-off by
// spinning costs well under a microsecond, one through a sleep 10-60 µs), then sleep on it.
//
// ctrl (Int32Array): [0] job counter, [1] acks of the current job, [2] exit flag, [3] error flag,
//                    [4] sleeping workers, [5] main thread sleeping on [1].
// args (Float64Array): [0] kernel index, [1] parts, [2] shard, [3..] args.
export const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { module, memory, ctrlBuf, argsBuf, index, names, spinMs, port } = workerData;
const ctrl = new Int32Array(ctrlBuf), a = new Float64Array(argsBuf);
const shards = []; // per memory: the parallel kernels, by index
function instantiate(mem) {
  const inst = new WebAssembly.Instance(module, { env: { memory: mem, abort() { throw new Error('wasm abort'); } } });
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
try {
  instantiate(memory);
} catch (e) {
  Atomics.store(ctrl, 3, 2);
}
let seen = 0;
for (;;) {
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
  }
  seen = g;
  if (Atomics.load(ctrl, 2)) break;
  const parts = a[1];
  if (index < parts && shards.length) {
    try {
      kernels(a[2])[a[0]](index, parts, a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14]);
    } catch (e) {
      Atomics.store(ctrl, 3, 1);
    }
  }
  Atomics.add(ctrl, 1, 1);
  if (Atomics.load(ctrl, 5)) Atomics.notify(ctrl, 1);
}
`;
