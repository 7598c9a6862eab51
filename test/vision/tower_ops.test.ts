// The vision towers' Backend ops: layerNorm and gelu (tanh form) on the WASM backends (SIMD and
// relaxed SIMD, 1 and 2 threads, split into tiny parts) against the reference backend (f64 sums,
// Math.tanh). Row widths that are not a multiple of 4 exercise the kernels' scalar tails; a row
// with a large mean checks the two-pass variance; the GELU covers its saturated ends.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sameBits, wasmVariants } from '../helpers.js';
import { ReferenceBackend } from '../../src/backend/reference.js';

let seed = 4242;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const ref = new ReferenceBackend();
const backends = wasmVariants([1, 2]);
after(() => backends.forEach((b) => b.dispose()));

function maxRel(a: Float32Array, b: Float32Array, floor: number): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(floor, Math.abs(b[i]!)));
  return m;
}

test('layerNorm: WASM = reference to 2e-6 (widths 32, 37, 1152; a row with mean 1000: 5e-5)', () => {
  for (const D of [32, 37, 1152]) {
    const R = 7,
      x = Float32Array.from({ length: R * D }, (_, i) => rnd() * 3 + (i < D ? 1000 : 0));
    const w = Float32Array.from({ length: D }, () => 1 + rnd() * 0.5),
      b = Float32Array.from({ length: D }, () => rnd());
    const want = new Float32Array(R * D);
    ref.layerNorm(want, x, w, b, R, D, 1e-6);
    for (const be of backends) {
      const [bx, bw, bb, out] = [be.alloc(R * D), be.alloc(D), be.alloc(D), be.alloc(R * D)];
      bx.set(x);
      bw.set(w);
      bb.set(b);
      be.layerNorm(out, bx, bw, bb, R, D, 1e-6);
      // row 0 (mean 1000): its f32 mean is off by up to half an ulp of 1000 (3e-5), which shifts the row
      const e0 = maxRel(out.subarray(0, D), want.subarray(0, D), 1),
        e = maxRel(out.subarray(D), want.subarray(D), 1);
      assert.ok(e0 < 5e-5 && e < 2e-6, `${be.name} D=${D}: max error ${e0} (mean 1000), ${e}`);
      be.layerNorm(bx, bx, bw, bb, R, D, 1e-6); // in place: the same values
      sameBits(bx, out, `${be.name} D=${D} in place`);
    }
  }
});

test('gelu (tanh): WASM = reference to 1e-6 absolute + 2e-6 relative, -20..20; element values do not depend on the split', () => {
  const n = 4099,
    x = Float32Array.from({ length: n }, (_, i) => (i < 8 ? [-20, -10, -5, 0, 1e-8, 5, 10, 20][i]! : rnd() * 8));
  const want = new Float32Array(n);
  ref.gelu(want, x, n);
  assert.equal(want[3], 0);
  assert.equal(want[7], 20); // saturated: x
  let first: Float32Array | undefined;
  for (const be of backends) {
    const bx = be.alloc(n),
      out = be.alloc(n);
    bx.set(x);
    be.gelu(out, bx, n);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(out[i]! - want[i]!) <= 1e-6 + 2e-6 * Math.abs(want[i]!), `${be.name} x=${x[i]}: ${out[i]} vs ${want[i]}`);
    if (!be.relaxed) {
      // the plain SIMD build gives the same bits whatever the thread count and tail position
      const tail = be.alloc(5);
      be.gelu(tail, bx.subarray(9, 14), 5);
      sameBits(tail, out.subarray(9, 14), `${be.name} tail`);
      if (first) sameBits(out, first, `${be.name} vs 1 thread`);
      else first = Float32Array.from(out);
    }
  }
});
