// --check-tensors (LoadOptions.checkTensors): the fields ggml_validate_row_data checks, for every type
// we read, and the loader's one-line error naming file, tensor, block / element and field. Each
// fixture is made here: the 256-wide qwen3-tiny-k256 model requantised to one type, with a NaN or
// infinity poked into one value of one tensor in a temp copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CHECKED_FIELDS, findNonFinite } from '../../src/formats/check.js';
import { DTYPES, type DType } from '../../src/formats/dtype.js';
import { openGguf, type GgufKV } from '../../src/formats/gguf.js';
import { writeGguf } from '../../src/formats/gguf_writer.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { dequantize, quantize } from '../../src/formats/quant/index.js';
import { loadModel, type LoadOptions } from '../../src/models/load.js';
import { WeightLoader } from '../../src/models/weights.js';
import { QwenError } from '../../src/errors.js';
import { fixtureDir, rng, tmpDir } from '../helpers.js';

const BASE = path.join(fixtureDir('models/qwen3-tiny-k256'), 'model-q5_k_s-pure.gguf');
const TINY = fixtureDir('models/qwen2-tiny-tied');
const ALL = Object.keys(DTYPES) as DType[];
const work = tmpDir();
const quiet: LoadOptions = { onNote: () => {} };

const NAN16 = 0x7e00,
  INF16 = 0x7c00,
  NEG_INF16 = 0xfc00; // f16
const put16 = (b: Uint8Array, at: number, v: number) => {
  b[at] = v & 0xff;
  b[at + 1] = v >>> 8;
};

/** The k256 model with every matrix in `dtype` (norms stay F32), written once per type. */
const made = new Map<DType, string>();
function modelIn(dtype: DType): string {
  const have = made.get(dtype);
  if (have) return have;
  const g = openGguf(BASE);
  try {
    const metadata: GgufKV[] = [...g.metadata].map(([key, value]) => ({ key, value, type: g.metadataTypes.get(key)! }));
    const tensors = [...g.tensors.values()].map((t) => {
      const raw = new Uint8Array(t.byteLength);
      g.readInto(t.name, raw);
      if (t.shape.length < 2) return { name: t.name, dtype: t.dtype, shape: t.shape, data: raw };
      const n = t.shape[0]! * t.shape[1]!,
        f = new Float32Array(n);
      dequantize(t.dtype, raw, 0, f, 0, n);
      return { name: t.name, dtype, shape: t.shape, data: quantize(dtype, f, n) };
    });
    const file = path.join(work, `model-${dtype}.gguf`);
    writeGguf(file, { metadata, tensors });
    made.set(dtype, file);
    return file;
  } finally {
    g.close();
  }
}

/** A copy of `file` with the 16-bit word(s) from byte `at` of tensor `name` set to `v`. */
function poked(file: string, name: string, at: number, v: number | number[], tag: string): string {
  const g = openGguf(file);
  const info = g.tensors.get(name)!;
  g.close();
  const bytes = fs.readFileSync(file);
  (Array.isArray(v) ? v : [v]).forEach((w, i) => put16(bytes, info.offset + at + 2 * i, w));
  const out = path.join(work, `${path.basename(file, '.gguf')}-${tag}.gguf`);
  fs.writeFileSync(out, bytes);
  return out;
}

/** Loads without the check, then gives finite logits or the engine's non-finite-logit error. */
function loadsWithoutCheck(file: string): void {
  const model = loadModel(file, quiet);
  const cache = model.newCache(8);
  try {
    const logits = model.forward(
      [1, 2, 3].map((token, pos) => ({ token, pos, seq: 0, logits: true })),
      [cache],
    );
    assert.ok(logits.every(Number.isFinite));
  } catch (e) {
    assert.ok(e instanceof QwenError, String(e));
    assert.match(e.message, /non-finite logit/);
  }
}

/** `f` throws a QwenError with exactly this message. */
function throwsMessage(f: () => unknown, message: string): void {
  assert.throws(f, (e: Error) => {
    assert.ok(e instanceof QwenError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

test('the checked fields are the scales the decoders read: a NaN there makes the block decode to NaN', () => {
  const r = rng(7);
  for (const dtype of ALL) {
    const { blockSize, blockBytes } = DTYPES[dtype];
    const n = Math.max(256, blockSize),
      x = Float32Array.from({ length: n }, () => r() * 2 - 1);
    for (const [field, at] of CHECKED_FIELDS[dtype].fields) {
      const b = quantize(dtype, x, n),
        y = new Float32Array(n);
      assert.equal(findNonFinite(dtype, b), undefined, `${dtype}: clean data`);
      if (dtype === 'F32') new DataView(b.buffer).setUint32(at - 2, 0x7fc00000, true);
      else put16(b, at, dtype === 'BF16' ? 0x7fc0 : NAN16);
      dequantize(dtype, b, 0, y, 0, n);
      assert.ok(Number.isNaN(y[0]), `${dtype} ${field || 'element'} at byte ${at} is read by the decoder`);
      assert.deepEqual(findNonFinite(dtype, b), { index: 0, field, value: 'NaN' });
      // the same in the last block, and after every other block's integer bytes are set to 0xff
      const c = quantize(dtype, x, n),
        last = n / blockSize - 1;
      if (dtype === 'F32') new DataView(c.buffer).setUint32(last * 4, 0xff800000, true);
      else put16(c, last * blockBytes + at, dtype === 'BF16' ? 0xff80 : NEG_INF16);
      assert.deepEqual(findNonFinite(dtype, c), { index: last, field, value: '-Inf' });
    }
  }
});

test('findNonFinite: the first bad block in order (d before dmin), any alignment, NaN with only low mantissa bits', () => {
  // Q4_K: block 5's dmin and block 3's d: block 3 first; then within block 3 d before dmin
  const q = new Uint8Array(144 * 10);
  put16(q, 5 * 144 + 2, INF16);
  put16(q, 3 * 144 + 0, NAN16);
  assert.deepEqual(findNonFinite('Q4_K', q), { index: 3, field: 'd', value: 'NaN' });
  put16(q, 3 * 144 + 0, 0x3c00);
  assert.deepEqual(findNonFinite('Q4_K', q), { index: 5, field: 'dmin', value: '+Inf' });
  put16(q, 5 * 144 + 0, NEG_INF16);
  assert.deepEqual(findNonFinite('Q4_K', q), { index: 5, field: 'd', value: '-Inf' });
  // integer bytes are never checked: all ones everywhere but the scales
  const q8 = new Uint8Array(34 * 4).fill(0xff);
  for (let i = 0; i < 4; i++) put16(q8, i * 34, 0x3c00);
  assert.equal(findNonFinite('Q8_0', q8), undefined);
  // unaligned views (odd byte offset: a DataView; offset 2: 16-bit but not 32-bit aligned)
  for (const off of [1, 2, 3]) {
    const big = new Uint8Array(off + 34 * 7),
      v = big.subarray(off);
    for (let i = 0; i < 7; i++) put16(v, i * 34, 0x3c00);
    put16(v, 4 * 34, NAN16);
    assert.deepEqual(findNonFinite('Q8_0', v), { index: 4, field: 'd', value: 'NaN' }, `offset ${off}`);
    const k = new Uint8Array(off + 144 * 4).subarray(off); // two fields through the same path
    put16(k, 2 * 144 + 2, INF16);
    put16(k, 3 * 144, NAN16);
    assert.deepEqual(findNonFinite('Q4_K', k), { index: 2, field: 'dmin', value: '+Inf' }, `Q4_K offset ${off}`);
    const f = new Uint8Array(off + 2 * 9).subarray(off);
    put16(f, 2 * 8, INF16);
    assert.deepEqual(findNonFinite('F16', f), { index: 8, field: '', value: '+Inf' }, `F16 offset ${off}`);
  }
  // F32: a NaN whose mantissa bits lie only in the low half, odd element counts, the tail after whole words
  for (const n of [1, 5, 8, 13]) {
    const f = new Float32Array(n);
    new DataView(f.buffer).setUint32((n - 1) * 4, 0xff800001, true);
    assert.deepEqual(findNonFinite('F32', new Uint8Array(f.buffer)), { index: n - 1, field: '', value: 'NaN' });
    const h = new Uint16Array(2 * n + 1);
    h[2 * n] = 0x7f80; // BF16 +Inf in the odd last element
    assert.deepEqual(findNonFinite('BF16', new Uint8Array(h.buffer)), { index: 2 * n, field: '', value: '+Inf' });
    h[1] = 0x7c00; // an F16 infinity is a finite BF16 (exponent 0xf8)
    assert.deepEqual(findNonFinite('BF16', new Uint8Array(h.buffer)), { index: 2 * n, field: '', value: '+Inf' });
    assert.deepEqual(findNonFinite('F16', new Uint8Array(h.buffer)), { index: 1, field: '', value: '+Inf' });
  }
});

test('every type: a bad scale (or element) fails the load with --check-tensors, naming tensor, block and field; loads without', () => {
  const name = 'blk.0.ffn_down.weight'; // [256, 256]
  for (const dtype of ALL) {
    const clean = modelIn(dtype);
    // a clean file passes the check and gives the same logits
    const toks = [5, 6, 7].map((token, pos) => ({ token, pos, seq: 0, logits: true }));
    const a = loadModel(clean, quiet),
      b = loadModel(clean, { ...quiet, checkTensors: true });
    assert.deepEqual(b.forward(toks, [b.newCache(4)]), a.forward(toks, [a.newCache(4)]), `${dtype}: same logits with the check`);
    const { blockBytes } = DTYPES[dtype];
    const block = 17; // block 17 of the tensor's 65536 values, or element 17 of a float type
    CHECKED_FIELDS[dtype].fields.forEach(([field, at], k) => {
      // F32: the high half of the element (0x7fc0xxxx is NaN whatever the low half)
      const [v, word] = k === 0 ? ['NaN', dtype === 'BF16' || dtype === 'F32' ? 0x7fc0 : NAN16] : ['+Inf', INF16];
      const bad = poked(clean, name, block * blockBytes + at, word, `${field || 'el'}`);
      const what = field ? `block ${block}'s scale ${field}` : `element ${block}`;
      throwsMessage(() => loadModel(bad, { ...quiet, checkTensors: true }), `${bad}: tensor '${name}': ${what} is ${v} (--check-tensors)`);
      loadsWithoutCheck(bad);
    });
  }
});

test('an F32 norm vector is checked too (read whole, not as a matrix)', () => {
  const bad = poked(modelIn('Q8_0'), 'blk.0.attn_norm.weight', 4 * 5, [0, 0xff80], 'norm'); // f32 -Inf
  throwsMessage(() => loadModel(bad, { ...quiet, checkTensors: true }), `${bad}: tensor 'blk.0.attn_norm.weight': element 5 is -Inf (--check-tensors)`);
  loadsWithoutCheck(bad);
});

test('--quantize with --check-tensors: a float matrix converted in pieces names the element in the whole tensor', () => {
  const row = 200,
    col = 3,
    el = row * 256 + col;
  const bad = poked(modelIn('F16'), 'blk.0.ffn_up.weight', 2 * el, NAN16, 'q');
  const piece = WeightLoader.convertPiece;
  WeightLoader.convertPiece = 16 * 256 * 4; // 16 rows a piece: the NaN lies in piece 12
  try {
    for (const quantize of ['q8_0', 'q4_k'] as const) {
      throwsMessage(() => loadModel(bad, { ...quiet, quantize, checkTensors: true }), `${bad}: tensor 'blk.0.ffn_up.weight': element ${el} is NaN (--check-tensors)`);
    }
    loadModel(modelIn('F16'), { ...quiet, quantize: 'q8_0', checkTensors: true });
  } finally {
    WeightLoader.convertPiece = piece;
  }
});

test('safetensors (BF16): the file named is the .safetensors, the tensor by its HF name', () => {
  const dir = path.join(work, 'st');
  fs.mkdirSync(dir);
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) fs.copyFileSync(path.join(TINY, f), path.join(dir, f));
  const file = path.join(dir, 'model.safetensors');
  const st = openSafetensors(dir);
  const info = st.tensors.get('model.layers.0.mlp.down_proj.weight')!;
  st.close();
  loadModel(dir, { ...quiet, checkTensors: true }); // clean
  assert.equal(info.dtype, 'BF16');
  const bytes = fs.readFileSync(file);
  put16(bytes, info.offset + 2 * 17, 0x7f80);
  fs.writeFileSync(file, bytes);
  throwsMessage(() => loadModel(dir, { ...quiet, checkTensors: true }), `${file}: tensor 'model.layers.0.mlp.down_proj.weight': element 17 is +Inf (--check-tensors)`);
  loadsWithoutCheck(dir);
});
