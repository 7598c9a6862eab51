// Tests for the ggml block formats. Expected values come from the layouts in ggml-common.h /
// ggml-quants.c written out per element here, never from our own quantisers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ToF32, dequantize, f16ToF32, f32ToBf16, f32ToF16, quantize,
} from '../../src/formats/quant/index.js';
import type { DType } from '../../src/formats/dtype.js';

const fr = Math.fround;

/** Plain IEEE binary16 decode, written independently of half.ts. */
function h16(h: number): number {
  const s = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * Math.pow(2, e - 15) * (1 + m / 1024);
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function deq(dtype: DType, bytes: Uint8Array, n: number, srcOffset = 0, dstOffset = 0): Float32Array {
  const out = new Float32Array(dstOffset + n).fill(-999);
  dequantize(dtype, bytes, srcOffset, out, dstOffset, n);
  for (let i = 0; i < dstOffset; i++) assert.equal(out[i], -999, 'wrote before dstOffset');
  return out.subarray(dstOffset);
}

function assertSame(actual: Float32Array, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], fr(expected[i]!))) {
      assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${fr(expected[i]!)}`);
    }
  }
}

// ---------------------------------------------------------------- f16 / bf16

test('f16: known bit patterns decode', () => {
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24); // largest subnormal
  assert.equal(f16ToF32(0x0400), 2 ** -14); // smallest normal
  assert.equal(f16ToF32(0x3555), fr(0.333251953125));
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.ok(Number.isNaN(f16ToF32(0xfc01)));
  assert.ok(Object.is(f16ToF32(0x8000), -0));
});

test('f16: decode of all 65536 patterns matches the IEEE formula', () => {
  for (let h = 0; h < 65536; h++) {
    const want = h16(h);
    const got = f16ToF32(h);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `0x${h.toString(16)}`);
    else if (!Object.is(got, want)) assert.fail(`0x${h.toString(16)}: ${got} != ${want}`);
  }
});

test('f16: encode, rounding to nearest even, specials', () => {
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(-2), 0xc000);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65519), 0x7bff); // below the halfway point to 65536
  assert.equal(f32ToF16(65520), 0x7c00); // halfway: ties to even = inf
  assert.equal(f32ToF16(1e6), 0x7c00);
  assert.equal(f32ToF16(-Infinity), 0xfc00);
  assert.equal(f32ToF16(NaN) & 0x7e00, 0x7e00);
  assert.equal(f32ToF16(0), 0x0000);
  assert.equal(f32ToF16(-0), 0x8000);
  assert.equal(f32ToF16(2 ** -24), 0x0001);
  assert.equal(f32ToF16(2 ** -25), 0x0000); // tie between 0 and 1 ulp -> even (0)
  assert.equal(f32ToF16(2 ** -25 * 1.0001), 0x0001);
  assert.equal(f32ToF16(3 * 2 ** -25), 0x0002); // 1.5 ulp -> 2 (even)
  assert.equal(f32ToF16(5 * 2 ** -25), 0x0002); // 2.5 ulp -> 2 (even)
  assert.equal(f32ToF16(-1023.5 * 2 ** -24), 0x8400); // subnormal rounds up into the normals
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie, mantissa 0 is even
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie, rounds up to even
  assert.equal(f32ToF16(1 + 2 ** -11 + 2 ** -20), 0x3c01); // just above the tie
  assert.equal(f32ToF16(2047 / 1024 + 2 ** -11), 0x4000); // mantissa carry into the exponent
  assert.equal(f32ToF16(0.1), 0x2e66);
  assert.equal(f32ToF16(-0.333333), 0xb555);
});

test('f16: every finite pattern survives decode -> encode', () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff)) continue; // NaN
    assert.equal(f32ToF16(f16ToF32(h)), h);
  }
});

test('bf16: known patterns and rounding', () => {
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc040), -3);
  assert.equal(bf16ToF32(0x7f80), Infinity);
  assert.ok(Number.isNaN(bf16ToF32(0x7fc0)));
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(-3), 0xc040);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie -> even (up)
  assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(f32ToBf16(3.4028234663852886e38), 0x7f80); // FLT_MAX rounds to inf
  assert.equal(f32ToBf16(-Infinity), 0xff80);
  const nan = f32ToBf16(NaN);
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.ok((nan & 0x7f) !== 0, 'NaN must stay NaN');
  assert.ok(Number.isNaN(bf16ToF32(nan)));
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7f80) === 0x7f80 && (h & 0x7f)) continue;
    assert.equal(f32ToBf16(bf16ToF32(h)), h);
  }
});

// ---------------------------------------------------------------- plain types

test('F32 / F16 / BF16 dequantize from little-endian bytes at odd offsets', () => {
  const vals = [1.5, -2.25, 3e-30, -0, 65504];
  const b = new Uint8Array(3 + vals.length * 4);
  const dv = new DataView(b.buffer);
  vals.forEach((v, i) => dv.setFloat32(3 + 4 * i, v, true));
  assertSame(deq('F32', b, vals.length, 3, 2), vals, 'F32 unaligned');
  const aligned = new Uint8Array(b.buffer.slice(3));
  assertSame(deq('F32', aligned, vals.length), vals, 'F32 aligned');

  const h = new Uint8Array([0xaa, 0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00]);
  assertSame(deq('F16', h, 4, 1), [1, -2, 65504, 2 ** -24], 'F16');
  const bf = new Uint8Array([0x80, 0x3f, 0x40, 0xc0, 0x49, 0x40]);
  assertSame(deq('BF16', bf, 3), [1, -3, 3.140625], 'BF16');
});

test('quantize F32 / F16 / BF16 writes little-endian bytes', () => {
  const x = new Float32Array([1, -2, 65504]);
  assert.deepEqual([...quantize('F16', x, 3)], [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]);
  assert.deepEqual([...quantize('BF16', x, 2)], [0x80, 0x3f, 0x00, 0xc0]);
  assert.deepEqual([...quantize('F32', x, 1)], [0x00, 0x00, 0x80, 0x3f]);
});

// ---------------------------------------------------------------- Q8_0

test('Q8_0: hand-built blocks', () => {
  // two blocks after 3 bytes of padding: d = 0.5 (0x3800), then d = -0.1 (0xae66)
  const b = new Uint8Array(3 + 2 * 34);
  const q0 = Array.from({ length: 32 }, (_, j) => (j * 37) % 256 - 128); // spans -128..127
  const q1 = Array.from({ length: 32 }, (_, j) => (j % 2 ? -1 : 1) * (j + 90));
  b.set([0x00, 0x38], 3);
  q0.forEach((q, j) => (b[5 + j] = q & 0xff));
  b.set([0x66, 0xae], 37);
  q1.forEach((q, j) => (b[39 + j] = q & 0xff));
  const want = [...q0.map((q) => q * 0.5), ...q1.map((q) => q * h16(0xae66))];
  assert.equal(want[0], -64);
  assert.equal(want[1], (37 - 128) * 0.5);
  assertSame(deq('Q8_0', b, 64, 3, 5), want, 'Q8_0');
});

test('Q8_0: quantize values 0..31 exactly as quantize_row_q8_0_ref', () => {
  const x = Float32Array.from({ length: 32 }, (_, j) => j);
  const out = quantize('Q8_0', x, 32);
  assert.equal(out.length, 34);
  // d = 31/127 = 0.244094... -> f16 0x33d0 (1.953125 * 2^-3 after rounding 975.6 -> 976)
  assert.deepEqual([out[0], out[1]], [0xd0, 0x33]);
  // q_j = round(j * 127/31); j*127/31 is never a tie
  for (let j = 0; j < 32; j++) assert.equal(out[2 + j], Math.round((j * 127) / 31), `q${j}`);
  assert.equal(out[2 + 31], 127);
  // negatives and halves: roundf rounds away from zero; x = -2.5*d lands exactly on -2.5
  const y = new Float32Array(32);
  y[0] = -127; y[1] = -2.5; y[2] = 2.5; y[3] = 0.49; y[4] = -63.5;
  const o = quantize('Q8_0', y, 32);
  assert.deepEqual([o[0], o[1]], [0x00, 0x3c]); // amax 127 -> d = 1
  assert.deepEqual([...o.subarray(2, 8)], [0x81, 0xfd, 0x03, 0x00, 0xc0, 0x00]); // -127 -3 3 0 -64 0
});
