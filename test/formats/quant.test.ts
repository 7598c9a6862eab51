// Tests for the ggml block formats. Expected values come from the layouts in ggml-common.h /
// ggml-quants.c written out per element here, never from our own quantisers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16ToF32, dequantize, f16ToF32, f32ToBf16, f32ToF16, quantize } from '../../src/formats/quant/index.js';
import type { DType } from '../../src/formats/dtype.js';
import { rng } from '../helpers.js';

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
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaN
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
    if ((h & 0x7f80) === 0x7f80 && h & 0x7f) continue;
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
  const q0 = Array.from({ length: 32 }, (_, j) => ((j * 37) % 256) - 128); // spans -128..127
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
  y[0] = -127;
  y[1] = -2.5;
  y[2] = 2.5;
  y[3] = 0.49;
  y[4] = -63.5;
  const o = quantize('Q8_0', y, 32);
  assert.deepEqual([o[0], o[1]], [0x00, 0x3c]); // amax 127 -> d = 1
  assert.deepEqual([...o.subarray(2, 8)], [0x81, 0xfd, 0x03, 0x00, 0xc0, 0x00]); // -127 -3 3 0 -64 0
});

// ---------------------------------------------------------------- Q4_0

test('Q4_0: hand-built blocks, low nibble = element j, high nibble = element j+16', () => {
  const b = new Uint8Array(2 * 18 + 1);
  // block A at byte 1: d = 0.25 (0x3400); byte j: low nibble j, high nibble 15-j
  b.set([0x00, 0x34], 1);
  for (let j = 0; j < 16; j++) b[3 + j] = j | ((15 - j) << 4);
  // block B: d = -2 (0xc000); nibbles from a fixed mixing pattern
  b.set([0x00, 0xc0], 19);
  const lo = (j: number) => (j * 5) & 15;
  const hi = (j: number) => (j * 11 + 3) & 15;
  for (let j = 0; j < 16; j++) b[21 + j] = lo(j) | (hi(j) << 4);
  const want: number[] = [];
  for (let j = 0; j < 16; j++) want[j] = (j - 8) * 0.25;
  for (let j = 0; j < 16; j++) want[16 + j] = (15 - j - 8) * 0.25;
  for (let j = 0; j < 16; j++) want[32 + j] = (lo(j) - 8) * -2;
  for (let j = 0; j < 16; j++) want[48 + j] = (hi(j) - 8) * -2;
  assert.equal(want[16], 1.75);
  assertSame(deq('Q4_0', b, 64, 1, 3), want, 'Q4_0');
});

test('Q4_0: quantize exactly as quantize_row_q4_0_ref', () => {
  // x_j = j - 16: max by magnitude is x_0 = -16, d = -16 / -8 = 2 (0x4000), id = 0.5,
  // q_j = min(15, trunc(x_j*0.5 + 8.5)) = min(15, floor((j + 1) / 2))
  const x = Float32Array.from({ length: 32 }, (_, j) => j - 16);
  const o = quantize('Q4_0', x, 32);
  assert.deepEqual([o[0], o[1]], [0x00, 0x40]);
  const q = (j: number) => Math.min(15, Math.floor((j + 1) / 2));
  for (let j = 0; j < 16; j++) assert.equal(o[2 + j], q(j) | (q(j + 16) << 4), `byte ${j}`);
  assert.equal(o[2 + 15] >> 4, 15); // x_31 = 15 -> 16 clipped to 15

  // a tie in magnitude keeps the first value: [4, -4] -> max = 4, d = -0.5 (0xb800)
  const t = new Float32Array(32);
  t[0] = 4;
  t[1] = -4;
  const ot = quantize('Q4_0', t, 32);
  assert.deepEqual([...ot.subarray(0, 4)], [0x00, 0xb8, 0x80, 0x8f]); // q0 = 0, q1 = 16 -> 15, rest 8
  t[0] = -4;
  t[1] = 4;
  assert.deepEqual([...quantize('Q4_0', t, 32).subarray(0, 4)], [0x00, 0x38, 0x80, 0x8f]);

  // all zero: d = 0 / -8 = -0 in C, so ggml stores f16 -0 (0x8000); every q = 8
  const z = quantize('Q4_0', new Float32Array(64), 64);
  for (const k of [0, 18]) assert.deepEqual([z[k], z[k + 1]], [0x00, 0x80]);
  for (let j = 0; j < 16; j++) assert.equal(z[2 + j], 0x88);
});

// ---------------------------------------------------------------- Q4_K

/** Pack eight 6-bit (scale, min) pairs the way ggml-common.h documents block_q4_K.scales. */
function packScalesK4(sc: number[], m: number[]): number[] {
  const b = new Array<number>(12).fill(0);
  for (let j = 0; j < 4; j++) {
    b[j] = sc[j]! | ((sc[j + 4]! >> 4) << 6);
    b[j + 4] = m[j]! | ((m[j + 4]! >> 4) << 6);
    b[j + 8] = (sc[j + 4]! & 15) | ((m[j + 4]! & 15) << 4);
  }
  return b;
}

/** get_scale_min_k4, written out. */
function unpackK4(j: number, q: ArrayLike<number>): [number, number] {
  if (j < 4) return [q[j]! & 63, q[j + 4]! & 63];
  return [(q[j + 4]! & 15) | ((q[j - 4]! >> 6) << 4), (q[j + 4]! >> 4) | ((q[j]! >> 6) << 4)];
}

/** dequantize_row_q4_K for one block, element by element: element e is in sub-block e/32. */
function expectQ4K(block: Uint8Array): number[] {
  const d = h16(block[0]! | (block[1]! << 8));
  const dmin = h16(block[2]! | (block[3]! << 8));
  const scales = block.subarray(4, 16);
  const out: number[] = [];
  for (let e = 0; e < 256; e++) {
    const sub = e >> 5; // 8 sub-blocks of 32
    const byte = block[16 + 32 * (sub >> 1) + (e & 31)]!; // pairs of sub-blocks share 32 bytes
    const q = sub % 2 === 0 ? byte & 15 : byte >> 4;
    const [sc, m] = unpackK4(sub, scales);
    out.push(d * sc * q - dmin * m);
  }
  return out;
}

test('Q4_K: hand-built block with distinct 6-bit scales and mins', () => {
  const sc = [1, 63, 17, 42, 5, 60, 33, 48];
  const m = [0, 9, 63, 21, 50, 3, 36, 27];
  const blk = new Uint8Array(144);
  blk.set([0x00, 0x2c, 0x00, 0x30]); // d = 0.0625, dmin = 0.125
  blk.set(packScalesK4(sc, m), 4);
  for (let g = 0; g < 4; g++) {
    for (let l = 0; l < 32; l++) blk[16 + 32 * g + l] = ((l * 7 + g) & 15) | (((l * 3 + 5 * g + 1) & 15) << 4);
  }
  for (let j = 0; j < 8; j++) assert.deepEqual(unpackK4(j, blk.subarray(4, 16)), [sc[j], m[j]], `pack ${j}`);
  const want: number[] = [];
  for (let g = 0; g < 4; g++) {
    for (let l = 0; l < 32; l++) want[64 * g + l] = 0.0625 * sc[2 * g]! * ((l * 7 + g) & 15) - 0.125 * m[2 * g]!;
    for (let l = 0; l < 32; l++) {
      want[64 * g + 32 + l] = 0.0625 * sc[2 * g + 1]! * ((l * 3 + 5 * g + 1) & 15) - 0.125 * m[2 * g + 1]!;
    }
  }
  assert.equal(want[160], 40.875); // sub-block 5, high nibble 11: 0.0625*60*11 - 0.125*3
  assert.equal(want[1], 0.0625 * 1 * 7 - 0);
  assert.equal(want[255], 0.0625 * 48 * ((31 * 3 + 16) & 15) - 0.125 * 27);
  assertSame(deq('Q4_K', blk, 256), want, 'Q4_K hand');
  assertSame(new Float32Array(expectQ4K(blk)), want, 'reference formula');
});

test('Q4_K: random blocks at an offset match the element-wise formula', () => {
  const r = rng(7);
  const n = 3;
  const b = new Uint8Array(5 + n * 144);
  for (let i = 0; i < b.length; i++) b[i] = (r() * 256) | 0;
  for (let k = 0; k < n; k++) {
    b.set([(r() * 256) | 0, 0x20 + k * 0x11], 5 + k * 144); // d: finite, varied sign (0x42 has sign 0)
    b.set([(r() * 256) | 0, 0x9c - k * 0x30], 5 + k * 144 + 2); // dmin: mixed signs
  }
  const want: number[] = [];
  for (let k = 0; k < n; k++) want.push(...expectQ4K(b.subarray(5 + k * 144, 5 + (k + 1) * 144)));
  assertSame(deq('Q4_K', b, n * 256, 5, 7), want, 'Q4_K random');
});

// ---------------------------------------------------------------- Q6_K

/** dequantize_row_q6_K for one block, element by element. */
function expectQ6K(block: Uint8Array): number[] {
  const d = h16(block[208]! | (block[209]! << 8));
  const out: number[] = [];
  for (let e = 0; e < 256; e++) {
    const half = e >> 7; // 128 values per half: 64 ql, 32 qh, 8 scales
    const quarter = (e >> 5) & 3; // which of y[l], y[l+32], y[l+64], y[l+96]
    const l = e & 31;
    const qlByte = block[64 * half + l + (quarter & 1) * 32]!;
    const low = quarter < 2 ? qlByte & 15 : qlByte >> 4;
    const high = (block[128 + 32 * half + l]! >> (2 * quarter)) & 3;
    const s = (block[192 + 8 * half + (l >> 4) + 2 * quarter]! << 24) >> 24;
    out.push(d * s * ((low | (high << 4)) - 32));
  }
  return out;
}

test('Q6_K: hand-built block, qh bit pairs and int8 scales', () => {
  const r = rng(11);
  const blk = new Uint8Array(210);
  for (let i = 0; i < 192; i++) blk[i] = (r() * 256) | 0;
  const scales = [-128, 127, 1, -1, 2, 3, -7, 64, 5, -33, 10, 100, -2, 17, 29, -90];
  scales.forEach((s, i) => (blk[192 + i] = s & 0xff));
  blk.set([0x00, 0x24], 208); // d = 2^-6
  blk[0] = 0x2b;
  blk[32] = 0x9f;
  blk[128] = 0xe4; // qh pairs 0,1,2,3 for y0, y32, y64, y96
  blk[16] = 0x00;
  blk[128 + 16] = 0x00; // y16: q = -32 with scale[1]
  blk[64] = 0x0f;
  blk[128 + 32] = 0x03; // y128: q = 63 - 32 with scale[8]
  const want = expectQ6K(blk);
  assert.equal(want[0], (1 / 64) * -128 * (11 - 32)); // 42
  assert.equal(want[32], (1 / 64) * 1 * (15 + 16 - 32));
  assert.equal(want[64], (1 / 64) * 2 * (2 + 32 - 32));
  assert.equal(want[96], (1 / 64) * -7 * (9 + 48 - 32));
  assert.equal(want[16], (1 / 64) * 127 * -32);
  assert.equal(want[128], (1 / 64) * 5 * 31);
  assertSame(deq('Q6_K', blk, 256), want, 'Q6_K hand');
});

test('Q6_K: random blocks at an offset match the element-wise formula', () => {
  const r = rng(13);
  const n = 3;
  const b = new Uint8Array(1 + n * 210);
  for (let i = 0; i < b.length; i++) b[i] = (r() * 256) | 0;
  for (let k = 0; k < n; k++) b[1 + k * 210 + 209] = [0x1c, 0xa0, 0x31][k]!; // finite d, one negative
  const want: number[] = [];
  for (let k = 0; k < n; k++) want.push(...expectQ6K(b.subarray(1 + k * 210, 1 + (k + 1) * 210)));
  assertSame(deq('Q6_K', b, n * 256, 1, 1), want, 'Q6_K random');
});

// ---------------------------------------------------------------- round trips

function randomBlocks(r: () => number, nBlocks: number): Float32Array {
  const x = new Float32Array(nBlocks * 32);
  for (let b = 0; b < nBlocks; b++) {
    const scale = Math.pow(10, r() * 8 - 4);
    for (let j = 0; j < 32; j++) x[b * 32 + j] = (r() * 2 - 1) * scale;
  }
  return x;
}

test('Q8_0 round trip: |x - deq(q(x))| <= d/2 + 127*|d - f16(d)| per element', () => {
  const r = rng(21);
  for (const nBlocks of [1, 3, 7, 13]) {
    const x = randomBlocks(r, nBlocks);
    const q = quantize('Q8_0', x, x.length);
    assert.equal(q.length, nBlocks * 34);
    const y = deq('Q8_0', q, x.length);
    for (let b = 0; b < nBlocks; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
      const d = amax / 127;
      const d16 = h16(q[b * 34]! | (q[b * 34 + 1]! << 8));
      // nearest f16: half an ulp, relative 2^-11 for normals, absolute 2^-25 for subnormals
      assert.ok(Math.abs(d16 - d) <= Math.max(d * 2 ** -11, 2 ** -25), 'd stored as the nearest f16');
      const bound = d / 2 + 127 * Math.abs(d - d16) + amax * 1e-6;
      for (let j = 0; j < 32; j++) {
        const i = b * 32 + j;
        assert.ok(Math.abs(x[i]! - y[i]!) <= bound, `block ${b} el ${j}: ${x[i]} vs ${y[i]}`);
      }
    }
  }
});

test('Q4_0 round trip: error <= |d|/2 (+ f16 error of d) unless clipped at q = 15, always <= |d|', () => {
  const r = rng(22);
  for (const nBlocks of [1, 3, 7, 13]) {
    const x = randomBlocks(r, nBlocks);
    const q = quantize('Q4_0', x, x.length);
    assert.equal(q.length, nBlocks * 18);
    const y = deq('Q4_0', q, x.length);
    for (let b = 0; b < nBlocks; b++) {
      let amax = 0;
      let max = 0;
      for (let j = 0; j < 32; j++) {
        const v = x[b * 32 + j]!;
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          max = v;
        }
      }
      const d = max / -8;
      const d16 = h16(q[b * 18]! | (q[b * 18 + 1]! << 8));
      const fErr = 8 * Math.abs(d - d16) + amax * 1e-6;
      for (let j = 0; j < 32; j++) {
        const i = b * 32 + j;
        const err = Math.abs(x[i]! - y[i]!);
        const clipped = x[i]! / d >= 7.5;
        assert.ok(err <= (clipped ? Math.abs(d) : Math.abs(d) / 2) + fErr, `block ${b} el ${j}: ${x[i]} vs ${y[i]}`);
      }
    }
  }
});

// ---------------------------------------------------------------- Q4_K / Q6_K quantisers

/** 256 values: a zero sub-block, an all-positive one, then a mixed-sign pattern. */
function kBlockInput(): Float32Array {
  const x = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    x[i] = i < 32 ? 0 : i < 64 ? ((i % 32) + 1) * 0.25 : (((i * 37) % 101) - 50) / 16 + ((i * 13) % 7) * 0.01;
  }
  return x;
}

// Bytes produced for kBlockInput() by ggml's quantize_row_q4_K_ref / quantize_row_q6_K_ref
// (C code from ggml-quants.c compiled with gcc -O2, no FMA contraction).
const GOLDEN_Q4_K =
  '4e20622ac0ffeef0c0c0fafb92a0f0d20010102020303040405050606070708080809090a0a0b0b0c0c0d0d0e0e0f0f0278de248ae045ab0' +
  '167cd1378de349af056ac0267cd2389ef359af156bc1278d9df359be156ac1268ce248ad0459b0157bd1378ce348ae046ac0267bd2379df3' +
  '156bc1278dd3499ef45ab0167cc2378de349af056bb1267cd2389ee459af156b';
const GOLDEN_Q6_K =
  'd060b040c010a000901060f070d060f0c040e060d070f060108000b010c040b0be3cba28a60482006eec7ad856d432b0ff6edd8c0b7a2998' +
  '07b625d443c271d067ee58c149b239b22b930c850d76ed663eb931c842e961ec830e751c971eb630b841d951ea73fb841d851e962fc730c9' +
  'd139b21b931c840d85ee67ef48d138b114b4c464b41464c41070c010b0c060b0e09030e08030d040309040e09030e040d4a209d47e09a37e' +
  '14a349d4be09d77ef8538e2453f9248ef9238ef4538d24530000c08030d031d0ccd0cece32cfcc310018';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('Q4_K / Q6_K quantize: bytes identical to ggml reference output', () => {
  const x = kBlockInput();
  assert.equal(hex(quantize('Q4_K', x, 256)), GOLDEN_Q4_K);
  assert.equal(hex(quantize('Q6_K', x, 256)), GOLDEN_Q6_K);
  // the zero sub-block decodes to exact zeros in both formats
  for (const dt of ['Q4_K', 'Q6_K'] as const) {
    const y = deq(dt, quantize(dt, x, 256), 256);
    for (let i = 0; i < 32; i++) assert.ok(y[i] === 0, `${dt} el ${i}: ${y[i]}`); // +0 or -0
  }
  // an all-zero input gives an all-zero Q6_K block and zero Q4_K d/dmin
  assert.ok(quantize('Q6_K', new Float32Array(256), 256).every((v) => v === 0));
  assert.deepEqual([...quantize('Q4_K', new Float32Array(256), 256).subarray(0, 4)], [0, 0, 0, 0]);
});

test('Q4_K / Q6_K round trip on random blocks (values 1e-2..1e3, where f16 d does not underflow)', () => {
  // Empirical bounds with ~1.5x margin. Q4_K: 15 levels over each 32-value sub-block's
  // [min(0,lo), max(0,hi)] range, 6-bit scales: max error <= range/10, RMS <= amax/20.
  // Q6_K: 64 signed levels per 16 values: max error <= sub-block amax/16, RMS <= amax/50.
  const r = rng(31);
  for (const dt of ['Q4_K', 'Q6_K'] as const) {
    const sub = dt === 'Q4_K' ? 32 : 16;
    for (const nBlocks of [1, 3, 5]) {
      const x = new Float32Array(nBlocks * 256);
      for (let b = 0; b < nBlocks; b++) {
        const s = Math.pow(10, r() * 5 - 2);
        for (let i = 0; i < 256; i++) x[b * 256 + i] = (r() * 2 - 1) * s;
      }
      const y = deq(dt, quantize(dt, x, x.length), x.length);
      for (let b = 0; b < nBlocks; b++) {
        let amax = 0;
        let se = 0;
        for (let i = b * 256; i < (b + 1) * 256; i++) {
          amax = Math.max(amax, Math.abs(x[i]!));
          se += (x[i]! - y[i]!) ** 2;
        }
        assert.ok(Math.sqrt(se / 256) <= amax / (dt === 'Q4_K' ? 20 : 50), `${dt} block ${b} RMS`);
        for (let k = b * 256; k < (b + 1) * 256; k += sub) {
          let lo = 0;
          let hi = 0;
          let err = 0;
          for (let i = k; i < k + sub; i++) {
            lo = Math.min(lo, x[i]!);
            hi = Math.max(hi, x[i]!);
            err = Math.max(err, Math.abs(x[i]! - y[i]!));
          }
          const bound = dt === 'Q4_K' ? (hi - lo) / 10 : Math.max(hi, -lo) / 16;
          assert.ok(err <= bound, `${dt} block ${b} sub-block ${(k % 256) / sub}: ${err} > ${bound}`);
        }
      }
    }
  }
});

// ---------------------------------------------------------------- bad input

test('element counts that are not a multiple of the block size throw, naming the type', () => {
  const src = new Uint8Array(1024);
  const dst = new Float32Array(1024);
  assert.throws(() => dequantize('Q8_0', src, 0, dst, 0, 33), /Q8_0/);
  assert.throws(() => dequantize('Q4_0', src, 0, dst, 0, 16), /Q4_0/);
  assert.throws(() => dequantize('Q4_K', src, 0, dst, 0, 100), /Q4_K/);
  assert.throws(() => dequantize('Q6_K', src, 0, dst, 0, 255), /Q6_K/);
  assert.throws(() => quantize('Q4_0', new Float32Array(64), 31), /Q4_0/);
  assert.throws(() => quantize('Q8_0', new Float32Array(64), 40), /Q8_0/);
  assert.throws(() => dequantize('Q6_K', new Uint8Array(209), 0, dst, 0, 256), /Q6_K/); // source too short
  dequantize('Q8_0', src, 0, dst, 0, 0); // zero elements is fine
});

// ---------------------------------------------------------------- Q4_1 / Q5_0 / Q5_1 (legacy)

function putF16(b: Uint8Array, at: number, h: number): void {
  b[at] = h & 0xff;
  b[at + 1] = h >> 8;
}
function putU32(b: Uint8Array, at: number, v: number): void {
  for (let i = 0; i < 4; i++) b[at + i] = (v >>> (8 * i)) & 0xff;
}

test('Q4_1: hand-built blocks, value = q*d + m, low nibble = element j, high = element j+16', () => {
  const b = new Uint8Array(40);
  putF16(b, 0, 0x3800); // d = 0.5
  putF16(b, 2, 0xc200); // m = -3
  for (let j = 0; j < 16; j++) b[4 + j] = j | ((15 - j) << 4);
  putF16(b, 20, 0xbc00); // d = -1
  putF16(b, 22, 0x3555); // m = f16(1/3)
  for (let j = 0; j < 16; j++) b[24 + j] = 0xf0 | (j & 3);
  const want: number[] = [];
  for (let j = 0; j < 32; j++) want.push(fr((j < 16 ? j : 31 - j) * 0.5) - 3);
  for (let j = 0; j < 32; j++) want.push(fr((j < 16 ? j & 3 : 15) * -1 + h16(0x3555)));
  assertSame(deq('Q4_1', b, 64), want, 'Q4_1');
  assertSame(deq('Q4_1', Uint8Array.of(7, ...b), 64, 1, 3), want, 'Q4_1 at offsets');
});

test('Q5_0: hand-built block, qh bit j = fifth bit of element j, value = (q - 16)*d (negative too)', () => {
  const b = new Uint8Array(22);
  putF16(b, 0, 0x3400); // d = 0.25
  const qh = 0b10100101_00001111_11110000_01100110; // distinct bits in every byte (little-endian u32)
  putU32(b, 2, qh);
  for (let j = 0; j < 16; j++) b[6 + j] = ((j * 7) & 15) | (((j * 5 + 3) & 15) << 4);
  const want: number[] = [];
  for (let e = 0; e < 32; e++) {
    const j = e & 15;
    const lo = e < 16 ? (j * 7) & 15 : (j * 5 + 3) & 15;
    const q = lo + 16 * ((qh >>> e) & 1);
    want.push((q - 16) * 0.25);
  }
  assert.ok(want.some((v) => v < 0) && want.some((v) => v > 0));
  assert.equal(want[0], -4); // q = 0 -> -16 d
  assertSame(deq('Q5_0', b, 32), want, 'Q5_0');
  assertSame(deq('Q5_0', Uint8Array.of(1, 2, 3, ...b), 32, 3, 1), want, 'Q5_0 at offsets');
});

test('Q5_1: hand-built block, qh bit order, value = q*d + m', () => {
  const b = new Uint8Array(24);
  putF16(b, 0, 0x3a00); // d = 0.75
  putF16(b, 2, 0xc900); // m = -10
  const qh = 0x80c3_5a01;
  putU32(b, 4, qh);
  for (let j = 0; j < 16; j++) b[8 + j] = (15 - j) | (j << 4);
  const want: number[] = [];
  for (let e = 0; e < 32; e++) {
    const j = e & 15;
    const q = (e < 16 ? 15 - j : j) + 16 * ((qh >>> e) & 1);
    want.push(fr(q * 0.75) - 10);
  }
  assertSame(deq('Q5_1', b, 32), want, 'Q5_1');
});

// Bytes produced for kBlockInput() by ggml's quantize_row_q4_1_ref / _q5_0_ref / _q5_1_ref
// (ggml-quants.c of node-llama-cpp 3.22.1's llama.cpp, gcc -O2 -ffp-contract=off).
const GOLDEN_LEGACY: [DType, string][] = [
  [
    'Q4_1',
    '00000000000000000000000000000000000000002238003480809191a2a2b3b3c4c4d5d5e6e6f7f76a3601c257ad0368ce248ae0469bf157bd1379cf7d362cc20368ce248ad0369bf157bd1379ce258a8036e6c1be1479df359be157ac0368ce248ad036803611c279df359be157ac1368ce248ad0369bf17d363bc2359be157ac1368ce248ae0469cf257bd9336f6c1e146ac0268bd2479df359be157ac1368',
  ],
  [
    'Q5_0',
    '0080ffffffff0000000000000000000000000000000000b801000000807f7f6e6e5d5d4c4c3b3b2a2a19190805b2a52d2d6961a5fa3e72c7fb3f84c70d5194ea2d612c3296b4b4a515d19d4905c07c38f3bf7b27e2ae5a164ab2d2d2969683c70c5094d91d61a5ea3e62b7fb3f8320b2b4b4a52d0c4095d91e61a5fa3e72c70b4f84c80d3b32d29296b66b27e2ae6a16d29d4905c08c38f3bf6b5fb24b5adad22e62b6fa3f83c70c4094d92d61a6ea2e',
  ],
  [
    'Q5_1',
    '000000000000000000000000000000000000000000000000003400340000ffff00112233445566778899aabbccddeeff353201c25ad2d296ae5a15d19d4804c07c38f3af7b26e2ae47322cc296b4b4a515d19d4904c07c37f3bf6b26e29e59154b32e6c12d2d69697c38f3af6b26e29e5a15c19d4804c07c4b3211c24b4b5adaf3bf6b27e29e5a15d19d4904c07c37f347323bc2d29296b66b27e2ae6a16d19d4904c08c38f3bf6b5d32f6c1b4a5252dd19d4905c07c37f3af6b26d29e5915d1',
  ],
];

test('Q4_1 / Q5_0 / Q5_1 quantize: bytes identical to ggml reference output', () => {
  const x = kBlockInput();
  for (const [dt, golden] of GOLDEN_LEGACY) assert.equal(hex(quantize(dt, x, 256)), golden, dt);
});

test('Q4_1 / Q5_0 / Q5_1 round trip: error within half a step (+ f16 rounding of d and m)', () => {
  const r = rng(77);
  for (const dt of ['Q4_1', 'Q5_0', 'Q5_1'] as const) {
    for (let trial = 0; trial < 50; trial++) {
      const scale = 10 ** (r() * 4 - 2);
      const shift = dt === 'Q5_0' ? 0 : (r() - 0.3) * scale;
      const x = Float32Array.from({ length: 32 * 8 }, () => (r() * 2 - 1) * scale + shift);
      const y = deq(dt, quantize(dt, x, x.length), x.length);
      let se = 0,
        sx = 0;
      for (let b = 0; b < 8; b++) {
        const blk = x.subarray(32 * b, 32 * b + 32);
        let lo = Infinity,
          hi = -Infinity,
          amax = 0;
        for (const v of blk) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          amax = Math.max(amax, Math.abs(v));
        }
        // step: (hi - lo)/15 or /31 for the offset types, amax/16 for Q5_0 (whose top level 15/16 clips)
        const step = dt === 'Q4_1' ? (hi - lo) / 15 : dt === 'Q5_1' ? (hi - lo) / 31 : amax / 16;
        // f16 keeps 11 bits: d's rounding moves the top level by up to 31 * |d| * 2^-11; m's by |m| * 2^-11
        const bound = (dt === 'Q5_0' ? step : step / 2) + 32 * step * 2 ** -11 + Math.abs(lo) * 2 ** -11 + 1e-6 * amax;
        for (let j = 0; j < 32; j++) {
          const e = Math.abs(y[32 * b + j]! - blk[j]!);
          if (e > bound) assert.fail(`${dt} trial ${trial} block ${b} el ${j}: |err| ${e} > ${bound}`);
          se += e * e;
          sx += blk[j]! * blk[j]!;
        }
      }
      assert.ok(Math.sqrt(se / sx) < (dt === 'Q4_1' ? 0.12 : 0.06), `${dt}: relative RMS ${Math.sqrt(se / sx)}`);
    }
  }
});
