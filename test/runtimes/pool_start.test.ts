// Worker threads that cannot start are reported by the first parallel job at once, with the
// worker's own error, and by every job after it (never the 60 s "did not answer" hang).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, threadsUnsupported } from '../../src/backend/pool.js';

// a module that imports a function the pool does not provide: instantiation throws in the worker
const BAD = new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 2, 9, 1, 3, 101, 110, 118, 1, 102, 0, 0]));

test('this runtime has what worker threads need', () => {
  assert.equal(threadsUnsupported(), null);
});

test('a worker that fails to start: the first job throws its error at once, later jobs too', () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const pool = new Pool(BAD, memory, 2, ['k'], 2, 2);
  try {
    let calls = 0;
    const t0 = performance.now();
    assert.throws(() => pool.run(0, 0, () => calls++, 2, []), /WasmBackend: a worker thread failed to start: .*(import|f|function).*; use --threads 1/);
    assert.ok(performance.now() - t0 < 15_000, 'reported without waiting for the start timeout');
    assert.throws(() => pool.run(0, 0, () => calls++, 2, []), /failed to start/);
    assert.throws(() => pool.run(0, 0, () => calls++, 1, []), /failed to start/); // the backend is unusable
    assert.equal(calls, 1); // part 0 ran once, before the failure was seen
  } finally {
    pool.dispose();
  }
});
