// safetensors reader and writer: single and sharded files, F32/F16/BF16, and corrupt files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors, writeShardedSafetensors, type StTensorOut } from '../../src/formats/safetensors_writer.js';
import { dequantize, quantize } from '../../src/formats/quant/index.js';
import { fixtureDir, tmpDir } from '../helpers.js';

const dir = tmpDir();
const vals = Float32Array.from({ length: 48 }, (_, i) => (i - 20) / 8);
const TENSORS: StTensorOut[] = [
  { name: 'a.f32', dtype: 'F32', shape: [6, 8], data: quantize('F32', vals, 48) },
  { name: 'b.f16', dtype: 'F16', shape: [48], data: quantize('F16', vals, 48) },
  { name: 'c.bf16', dtype: 'BF16', shape: [2, 3, 8], data: quantize('BF16', vals, 48) },
];

test('safetensors round trip, single file: shapes, dtypes and values (exact in F32/F16/BF16 for these values)', () => {
  const f = path.join(dir, 'one.safetensors');
  writeSafetensors(f, TENSORS);
  const s = openSafetensors(f);
  for (const t of TENSORS) {
    const info = s.tensors.get(t.name)!;
    assert.deepEqual(info.shape, t.shape);
    assert.equal(info.dtype, t.dtype);
    const raw = new Uint8Array(info.byteLength);
    s.readInto(t.name, raw);
    const back = new Float32Array(48);
    dequantize(t.dtype, raw, 0, back, 0, 48);
    assert.deepEqual(back, vals);
  }
  s.close();
});

test('safetensors sharded: index.json + shards read as one set; missing shard and misplaced tensor are errors', () => {
  const d = path.join(dir, 'sharded');
  fs.mkdirSync(d);
  const names = writeShardedSafetensors(d, TENSORS, 250); // [a.f32] [b.f16, c.bf16]
  assert.equal(names.length, 2);
  const s = openSafetensors(d);
  assert.deepEqual([...s.tensors.keys()].sort(), TENSORS.map((t) => t.name).sort());
  const raw = new Uint8Array(s.tensors.get('c.bf16')!.byteLength);
  s.readInto('c.bf16', raw);
  assert.deepEqual(raw, TENSORS[2]!.data);
  s.close();

  const idx = path.join(d, 'model.safetensors.index.json');
  const index = JSON.parse(fs.readFileSync(idx, 'utf8'));
  index.weight_map['c.bf16'] = names[0];
  fs.writeFileSync(idx, JSON.stringify(index));
  assert.throws(() => openSafetensors(d), /tensor 'c.bf16' is in this shard, but .*index.json places it in/);
  index.weight_map['c.bf16'] = names[1];
  index.weight_map['z.missing'] = names[0];
  fs.writeFileSync(idx, JSON.stringify(index));
  assert.throws(() => openSafetensors(d), /tensor 'z.missing' should be in shard/);
  delete index.weight_map['z.missing'];
  fs.writeFileSync(idx, JSON.stringify(index));
  fs.rmSync(path.join(d, names[1]!));
  assert.throws(() => openSafetensors(d), new RegExp(`shard '${names[1]}' is missing`));
  index.weight_map['c.bf16'] = '../evil.safetensors';
  fs.writeFileSync(idx, JSON.stringify(index));
  assert.throws(() => openSafetensors(d), /is not a plain file name/);
});

function corrupt(name: string, mutate: (b: Buffer) => Buffer): string {
  const src = fs.readFileSync(path.join(fixtureDir('models/qwen2-tiny-tied'), 'model.safetensors'));
  const f = path.join(dir, name);
  fs.writeFileSync(f, mutate(Buffer.from(src)));
  return f;
}
function editHeader(b: Buffer, edit: (h: Record<string, any>) => void): Buffer {
  const n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString());
  edit(h);
  const hb = Buffer.from(JSON.stringify(h).padEnd(n, ' '));
  assert.ok(hb.length === n, 'edited header must keep its length');
  return Buffer.concat([b.subarray(0, 8), hb, b.subarray(8 + n)]);
}

const CASES: [string, (b: Buffer) => Buffer, RegExp][] = [
  ['tiny.safetensors', (b) => b.subarray(0, 5), /too small to be a safetensors file/],
  [
    'header-past-end.safetensors',
    (b) => {
      b.writeBigUInt64LE(1n << 40n, 0);
      return b;
    },
    /header length \d+ runs past the end of the file/,
  ],
  [
    'header-not-json.safetensors',
    (b) => {
      b.write('{{{{', 8);
      return b;
    },
    /header is not valid JSON/,
  ],
  ['truncated.safetensors', (b) => b.subarray(0, b.length - 10), /tensor '[^']+' data .* lies past the end of the file/],
  [
    'size-mismatch.safetensors',
    (b) =>
      editHeader(b, (h) => {
        h['model.norm.weight'].shape = [65];
      }),
    /tensor 'model.norm.weight' is BF16 \[65\] \(130 bytes\) but its data_offsets span 128 bytes/,
  ],
  [
    'bad-dtype.safetensors',
    (b) =>
      editHeader(b, (h) => {
        h['model.norm.weight'].dtype = 'I8';
      }),
    /tensor 'model.norm.weight' has dtype 'I8'/,
  ],
  [
    'bad-offsets.safetensors',
    (b) =>
      editHeader(b, (h) => {
        h['model.norm.weight'].data_offsets = [10, 5];
      }),
    /tensor 'model.norm.weight' has invalid data_offsets/,
  ],
  [
    'bad-shape.safetensors',
    (b) =>
      editHeader(b, (h) => {
        h['model.norm.weight'].shape = [-64];
      }),
    /tensor 'model.norm.weight' has an invalid shape/,
  ],
];
for (const [name, mutate, re] of CASES) {
  test(`corrupt safetensors (${name}) gives a clear error naming the file`, () => {
    const f = corrupt(name, mutate);
    assert.throws(
      () => openSafetensors(f).close(),
      (e: Error) => {
        assert.equal(e.name, 'QwenError', e.stack);
        assert.ok(e.message.includes(f), e.message);
        assert.match(e.message, re);
        return true;
      },
    );
  });
}
