// Q2_K, Q3_K, Q5_K, IQ4_NL, IQ4_XS (and Q4_K, Q6_K again) against ggml itself: the blocks in
// test/fixtures/quant/ggml-kquant were written by the libggml-base of node-llama-cpp 3.22.1
// (llama.cpp de3ff815) from twelve 256-wide f32 rows chosen to reach the edge paths (zero rows,
// constant rows, f16-subnormal scales, one outlier, all-positive / all-negative rows, integer
// ties), together with ggml's own dequantisation of them (scripts/fixtures-kquant/ggml_vectors.py).
// Checked: our quantize() writes the same bytes, our dequantize() and the wasm row decoder give
// the same float bits. Plus hand-built blocks whose values follow from ggml-common.h's layouts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dequantize, quantize } from '../../src/formats/quant/index.js';
import { DTYPES, GGML_TYPE_NAMES, dtypeFromGgml, type DType } from '../../src/formats/dtype.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { fixtureDir, readF32, rng } from '../helpers.js';

const dir = fixtureDir('quant/ggml-kquant');
const input = readF32(path.join(dir, 'input.f32'));
const ROWS = input.length / 256;
const TYPES: [string, DType][] = [
  ['q2_k', 'Q2_K'],
  ['q3_k', 'Q3_K'],
  ['q4_k', 'Q4_K'],
  ['q5_k', 'Q5_K'],
  ['q6_k', 'Q6_K'],
  ['iq4_nl', 'IQ4_NL'],
  ['iq4_xs', 'IQ4_XS'],
];

function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length),
    b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: element ${i} (row ${Math.floor(i / 256)}) is ${got[i]}, ggml has ${want[i]}`);
  }
}

test('ggml ids: the five new types are read, the IQ1/IQ2/IQ3, TQ and MXFP4 families still refused by name', () => {
  assert.deepEqual([10, 11, 13, 20, 23].map(dtypeFromGgml), ['Q2_K', 'Q3_K', 'Q5_K', 'IQ4_NL', 'IQ4_XS']);
  for (const t of [10, 11, 13, 20, 23]) assert.equal(GGML_TYPE_NAMES[t], undefined);
  for (const t of [16, 17, 18, 19, 21, 22, 29, 34, 35, 39]) {
    assert.equal(dtypeFromGgml(t), undefined);
    assert.ok(GGML_TYPE_NAMES[t], `ggml type ${t} has a name`);
  }
  // block sizes from ggml-common.h's static_asserts
  assert.deepEqual(
    (['Q2_K', 'Q3_K', 'Q5_K', 'IQ4_NL', 'IQ4_XS'] as DType[]).map((t) => [DTYPES[t].blockSize, DTYPES[t].blockBytes]),
    [
      [256, 84],
      [256, 110],
      [256, 176],
      [32, 18],
      [256, 136],
    ],
  );
});

const made: WasmBackend[] = [];
after(() => made.forEach((b) => b.dispose()));

for (const [file, dtype] of TYPES) {
  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, `${file}.bin`)));
  const want = readF32(path.join(dir, `${file}.deq.f32`));

  test(`${dtype}: quantize() writes ggml's bytes for the ${ROWS} test rows`, () => {
    const mine = quantize(dtype, input, input.length);
    assert.equal(mine.length, bytes.length);
    const bb = DTYPES[dtype].blockBytes;
    for (let i = 0; i < mine.length; i++) {
      if (mine[i] !== bytes[i]) {
        assert.fail(`byte ${i} (block ${Math.floor(i / bb)}, offset ${i % bb}) is ${mine[i]}, ggml wrote ${bytes[i]}`);
      }
    }
  });

  test(`${dtype}: dequantize() gives ggml's float bits`, () => {
    const got = new Float32Array(input.length);
    dequantize(dtype, bytes, 0, got, 0, got.length);
    sameBits(got, want, dtype);
    // and at an odd byte offset into a larger buffer (no alignment assumptions)
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const got2 = new Float32Array(input.length + 5);
    dequantize(dtype, shifted, 3, got2, 5, input.length);
    sameBits(got2.subarray(5), want, `${dtype} at offset 3`);
  });

  for (const relaxed of [false, true]) {
    test(`wasm${relaxed ? ' (relaxed)' : ''} ${dtype}: the row decoder gives ggml's float bits (embed)`, () => {
      const be = new WasmBackend({ threads: 1, relaxed });
      made.push(be);
      const w = be.weight(dtype, [ROWS, 256]);
      w.bytes.set(bytes);
      const out = be.alloc(input.length);
      be.embed(
        out,
        w,
        Int32Array.from({ length: ROWS }, (_, i) => ROWS - 1 - i),
      );
      const flipped = new Float32Array(input.length);
      for (let r = 0; r < ROWS; r++) flipped.set(want.subarray((ROWS - 1 - r) * 256, (ROWS - r) * 256), r * 256);
      sameBits(new Float32Array(out), flipped, dtype);
    });
  }

  test(`${dtype}: random blocks (any byte pattern with finite scales) decode alike in TS and wasm`, () => {
    const r = rng(DTYPES[dtype].ggmlType);
    const n = 1024,
      nb = n / DTYPES[dtype].blockSize,
      bb = DTYPES[dtype].blockBytes;
    const raw = Uint8Array.from({ length: nb * bb }, () => Math.floor(r() * 256));
    // keep every f16 scale finite (exponent < 31), wherever the type keeps them
    for (const off of SCALE_OFFSETS[dtype]) for (let b = 0; b < nb; b++) raw[b * bb + off + 1]! &= 0x7b;
    const ts = new Float32Array(n);
    dequantize(dtype, raw, 0, ts, 0, n);
    const be = new WasmBackend({ threads: 1 });
    made.push(be);
    const w = be.weight(dtype, [1, n]);
    w.bytes.set(raw);
    const out = be.alloc(n);
    be.embed(out, w, Int32Array.of(0));
    sameBits(new Float32Array(out), ts, `${dtype} random`);
  });
}

/** Byte offsets of the f16 scales in a block (ggml-common.h). */
const SCALE_OFFSETS: Record<string, number[]> = {
  Q2_K: [80, 82],
  Q3_K: [108],
  Q4_K: [0, 2],
  Q5_K: [0, 2],
  Q6_K: [208],
  IQ4_NL: [0],
  IQ4_XS: [0],
};

// ------------------------------------------------------------- hand-built blocks

const KV = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

test('IQ4_NL: a hand-built block decodes to d * kvalues_iq4nl[q]', () => {
  const b = new Uint8Array(18);
  b[0] = 0x00;
  b[1] = 0x38; // d = 0.5
  for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
  const y = new Float32Array(32);
  dequantize('IQ4_NL', b, 0, y, 0, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(y[j], 0.5 * KV[j]!);
    assert.equal(y[j + 16], 0.5 * KV[15 - j]!);
  }
});

test('IQ4_XS: block scales are 6-bit (low nibble in scales_l, 2 high bits in scales_h) minus 32', () => {
  const b = new Uint8Array(136);
  b[0] = 0x00;
  b[1] = 0x3c; // d = 1
  // block ib gets ls = 32 + ib - 4 (28..35), i.e. scale ib - 4
  let sh = 0;
  for (let ib = 0; ib < 8; ib++) {
    const ls = 28 + ib;
    b[4 + (ib >> 1)]! |= (ls & 15) << (4 * (ib & 1));
    sh |= (ls >> 4) << (2 * ib);
  }
  b[2] = sh & 0xff;
  b[3] = sh >> 8;
  for (let i = 0; i < 128; i++) b[8 + i] = 0xf0 | (i & 15); // low: index i % 16, high: 15
  const y = new Float32Array(256);
  dequantize('IQ4_XS', b, 0, y, 0, 256);
  for (let ib = 0; ib < 8; ib++) {
    for (let j = 0; j < 16; j++) {
      assert.equal(y[32 * ib + j], (ib - 4) * KV[(16 * ib + j) & 15]!, `block ${ib} value ${j}`);
      assert.equal(y[32 * ib + 16 + j], (ib - 4) * 113);
    }
  }
});

test('Q2_K: value v of half h, run j reads bits 2j of byte 32h + v % 32 with scale nibbles of byte 8h + 2j + (v % 32 >= 16)', () => {
  const b = new Uint8Array(84);
  for (let s = 0; s < 16; s++) b[s] = (s & 15) | ((15 - s) << 4); // scale s, min 15 - s
  for (let i = 0; i < 64; i++) b[16 + i] = 0b11100100; // levels 0, 1, 2, 3 in runs 0..3
  b[80] = 0x00;
  b[81] = 0x3c; // d = 1
  b[82] = 0x00;
  b[83] = 0x38; // dmin = 0.5
  const y = new Float32Array(256);
  dequantize('Q2_K', b, 0, y, 0, 256);
  for (let v = 0; v < 256; v++) {
    const h = v >> 7,
      j = (v >> 5) & 3,
      s = 8 * h + 2 * j + ((v & 31) >= 16 ? 1 : 0);
    assert.equal(y[v], s * j - 0.5 * (15 - s), `value ${v}`);
  }
});

test('Q3_K: levels (q - 4 unless the hmask bit is set), scales 6-bit minus 32', () => {
  const b = new Uint8Array(110);
  // hmask: bit 4h + j set for even bytes only
  for (let i = 0; i < 32; i += 2) b[i] = 0xff;
  for (let i = 0; i < 64; i++) b[32 + i] = 0b11100100;
  // scales: sub-block s gets 6-bit 32 + s - 8 (24..39)
  for (let s = 0; s < 16; s++) {
    const v = 24 + s;
    if (s < 8) b[96 + s]! |= v & 15;
    else b[96 + s - 8]! |= (v & 15) << 4;
    b[96 + 8 + (s & 3)]! |= (v >> 4) << (2 * (s >> 2));
  }
  b[108] = 0x00;
  b[109] = 0x3c; // d = 1
  const y = new Float32Array(256);
  dequantize('Q3_K', b, 0, y, 0, 256);
  for (let v = 0; v < 256; v++) {
    const h = v >> 7,
      j = (v >> 5) & 3,
      l = v & 31,
      s = 8 * h + 2 * j + (l >= 16 ? 1 : 0);
    const q = j - (l % 2 === 0 ? 0 : 4);
    assert.equal(y[v], (s - 8) * q, `value ${v}`);
  }
});

test('Q5_K: fifth bit of sub-block s value l is bit s of qh[l]', () => {
  const b = new Uint8Array(176);
  b[0] = 0x00;
  b[1] = 0x3c; // d = 1
  b[2] = 0x00;
  b[3] = 0x00; // dmin = 0
  for (let j = 0; j < 4; j++) b[4 + j] = 1; // sub-blocks 0..3: scale 1
  for (let j = 4; j < 8; j++) b[8 + j] = 2; // sub-blocks 4..7: scale 2 (low nibble of byte j + 4)
  for (let l = 0; l < 32; l++) b[16 + l] = l % 2 ? 0xaa : 0x55; // odd l: odd sub-blocks get +16
  for (let i = 0; i < 128; i++) b[48 + i] = 0x73;
  const y = new Float32Array(256);
  dequantize('Q5_K', b, 0, y, 0, 256);
  for (let v = 0; v < 256; v++) {
    const s = v >> 5,
      l = v & 31;
    const q = (s % 2 ? 7 : 3) + (((l % 2 ? 0xaa : 0x55) >> s) & 1 ? 16 : 0);
    assert.equal(y[v], (s < 4 ? 1 : 2) * q, `value ${v}`);
  }
});

test('quantize round trip of the new types stays near the input (sanity, not exactness)', () => {
  const r = rng(7);
  const x = Float32Array.from({ length: 1024 }, () => (r() - 0.5) * 2);
  for (const [dtype, tol] of [
    ['Q2_K', 0.5],
    ['Q3_K', 0.3],
    ['Q5_K', 0.06],
    ['IQ4_NL', 0.15],
    ['IQ4_XS', 0.15],
  ] as [DType, number][]) {
    const y = new Float32Array(1024);
    dequantize(dtype, quantize(dtype, x, 1024), 0, y, 0, 1024);
    let worst = 0;
    for (let i = 0; i < 1024; i++) worst = Math.max(worst, Math.abs(y[i]! - x[i]!));
    assert.ok(worst < tol, `${dtype}: worst error ${worst}`);
  }
});
