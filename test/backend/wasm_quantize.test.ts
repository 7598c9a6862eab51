// The WebAssembly quantiser of --quantize (quantizeInto) against src/formats/quant, which is
// bit-exact with ggml's reference quantisers: the same bytes for F32 / F16 / BF16 sources into
// Q8_0 and Q4_0, including rounding ties (roundf rounds halves away from zero), f16-subnormal
// scales, zero blocks, and a refusal (false) for blocks holding NaN or infinity.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WasmBackend } from '../../src/backend/wasm.js';
import { dequantize, quantize } from '../../src/formats/quant/index.js';
import type { DType } from '../../src/formats/dtype.js';
import { loadModel } from '../../src/models/load.js';
import { fixtureDir } from '../helpers.js';

const be = new WasmBackend({ threads: 1, spinMs: 0.05 });
after(() => be.dispose());

let seed = 777;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;

/** Blocks of 32 that exercise the rounding: ties at every scale, tiny and huge magnitudes. */
function hardValues(): Float32Array {
  const blocks: number[][] = [];
  // amax 127 makes d = 1, so x * (1/d) = x: halves are ties for roundf
  blocks.push(Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 : (j % 16) - 8 + 0.5)));
  blocks.push(Array.from({ length: 32 }, (_, j) => (j === 0 ? -127 : -((j % 16) + 0.5))));
  blocks.push(Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 : 0.49999997 * (j % 2 ? 1 : -1))));
  blocks.push(new Array(32).fill(0)); // d = 0
  blocks.push(Array.from({ length: 32 }, () => rnd() * 1e-6)); // d an f16 subnormal
  blocks.push(Array.from({ length: 32 }, () => rnd() * 3e-8)); // d flushes toward zero
  blocks.push(Array.from({ length: 32 }, () => rnd() * 60000)); // d near f16's top
  blocks.push(Array.from({ length: 32 }, (_, j) => (j === 5 ? -8 : j === 9 ? 8 : rnd() * 8))); // Q4_0: first of equal magnitudes
  for (let i = 0; i < 200; i++) blocks.push(Array.from({ length: 32 }, () => rnd() * 0.05 * (1 + (i % 7))));
  return Float32Array.from(blocks.flat());
}

/** x stored as `type` (bytes), and the f32 values those bytes hold. */
function stored(type: DType, x: Float32Array): { bytes: Uint8Array; values: Float32Array } {
  const bytes = type === 'F32' ? new Uint8Array(x.slice().buffer) : quantize(type, x, x.length);
  const values = new Float32Array(x.length);
  dequantize(type, bytes, 0, values, 0, x.length);
  return { bytes, values };
}

for (const src of ['F32', 'F16', 'BF16'] as const) {
  for (const dst of ['Q8_0', 'Q4_0'] as const) {
    test(`quantizeInto ${src} -> ${dst} writes ggml's reference bytes (ties, subnormal scales, zero blocks)`, () => {
      const x = hardValues();
      const { bytes, values } = stored(src, x);
      const want = quantize(dst, values, values.length);
      const rows = x.length / 32;
      const w = be.weight(dst, [rows, 32]);
      // two pieces, the second at a byte offset, as the loader converts
      const half = Math.floor(rows / 2),
        srcRow = bytes.length / rows,
        dstRow = want.length / rows;
      assert.ok(be.quantizeInto(w, 0, bytes.subarray(0, half * srcRow), src, half * 32));
      assert.ok(be.quantizeInto(w, half * dstRow, bytes.subarray(half * srcRow), src, (rows - half) * 32));
      assert.deepEqual(Buffer.from(w.bytes), Buffer.from(want));
    });
  }
}

test('quantizeInto refuses (false) a piece with NaN or infinity, and types it has no kernel for', () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const x = Float32Array.from({ length: 64 }, (_, i) => (i === 40 ? bad : rnd()));
    const w = be.weight('Q8_0', [2, 32]);
    assert.equal(be.quantizeInto(w, 0, new Uint8Array(x.buffer), 'F32', 64), false);
  }
  const k = be.weight('Q4_K', [1, 256]);
  assert.equal(be.quantizeInto(k, 0, new Uint8Array(1024), 'F32', 256), false);
  const q = be.weight('Q8_0', [1, 32]);
  assert.equal(be.quantizeInto(q, 0, new Uint8Array(64), 'Q8_0' as DType, 32), false);
});

test("--quantize on the WebAssembly backend: the same logits as on the reference backend's converted weights, exactly", () => {
  const dir = fixtureDir('models/qwen2-tiny-tied');
  const ids = [261, 72, 101, 108, 108, 111];
  const run = (backend: WasmBackend | undefined, quantize: 'q8_0' | 'q4_0') => {
    const model = loadModel(dir, { backend, quantize, onNote: () => {} });
    const cache = model.newCache(ids.length);
    return Array.from(
      model.forward(
        ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
        [cache],
      ),
    );
  };
  for (const q of ['q8_0', 'q4_0'] as const) {
    const fast = new WasmBackend({ threads: 1, spinMs: 0.05 });
    // the same wasm kernels, weights converted by the TypeScript quantiser
    const slow = new WasmBackend({ threads: 1, spinMs: 0.05 });
    (slow as { quantizeInto?: unknown }).quantizeInto = undefined;
    let calls = 0;
    const inner = fast.quantizeInto.bind(fast);
    fast.quantizeInto = (...a) => (calls++, inner(...a));
    try {
      assert.deepEqual(run(fast, q), run(slow, q), q);
      assert.ok(calls > 0, 'the kernel converted the matrices');
    } finally {
      fast.dispose();
      slow.dispose();
    }
  }
});
