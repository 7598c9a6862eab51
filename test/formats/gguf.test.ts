// GGUF reader and writer: round trip of every metadata type and tensor type, and corrupt files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf, type GgufKV } from '../../src/formats/gguf.js';
import { writeGguf } from '../../src/formats/gguf_writer.js';
import { quantize } from '../../src/formats/quant/index.js';
import { fixtureDir, tmpDir } from '../helpers.js';

const dir = tmpDir();

function sample(n: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1);
}

const META: GgufKV[] = [
  { key: 'general.architecture', type: 'str', value: 'qwen2' },
  { key: 'a.u8', type: 'u8', value: 200 },
  { key: 'a.i8', type: 'i8', value: -5 },
  { key: 'a.u16', type: 'u16', value: 65000 },
  { key: 'a.i16', type: 'i16', value: -30000 },
  { key: 'a.u32', type: 'u32', value: 4000000000 },
  { key: 'a.i32', type: 'i32', value: -2000000000 },
  { key: 'a.f32', type: 'f32', value: 0.5 },
  { key: 'a.bool', type: 'bool', value: true },
  { key: 'a.u64', type: 'u64', value: 2 ** 40 },
  { key: 'a.i64', type: 'i64', value: -(2 ** 40) },
  { key: 'a.f64', type: 'f64', value: Math.PI },
  { key: 'a.unicode', type: 'str', value: '你好 🦙' },
  { key: 'a.strs', type: { array: 'str' }, value: ['Ġt', '<|im_end|>', ''] },
  { key: 'a.ints', type: { array: 'i32' }, value: [1, -2, 3] },
];

test('GGUF round trip: every metadata type, F32/F16/Q8_0/Q4_0 tensors, offsets aligned', () => {
  const f = path.join(dir, 'rt.gguf');
  const a = sample(4 * 64);
  const tensors = [
    { name: 'w.f32', dtype: 'F32' as const, shape: [3], data: new Uint8Array(new Float32Array([1, 2, 3]).buffer) },
    { name: 'w.f16', dtype: 'F16' as const, shape: [4, 64], data: quantize('F16', a, a.length) },
    { name: 'w.q8', dtype: 'Q8_0' as const, shape: [4, 64], data: quantize('Q8_0', a, a.length) },
    { name: 'w.q4', dtype: 'Q4_0' as const, shape: [4, 64], data: () => quantize('Q4_0', a, a.length) },
  ];
  writeGguf(f, { metadata: META, tensors });
  const g = openGguf(f);
  try {
    assert.equal(g.version, 3);
    for (const kv of META) {
      assert.deepEqual(g.metadata.get(kv.key), kv.value, kv.key);
      assert.deepEqual(g.metadataTypes.get(kv.key), kv.type, kv.key);
    }
    assert.deepEqual(
      g.tensorList.map((t) => t.name),
      tensors.map((t) => t.name),
    );
    for (const t of tensors) {
      const info = g.tensors.get(t.name)!;
      assert.deepEqual(info.shape, t.shape);
      assert.equal(info.dtype, t.dtype);
      assert.equal((info.offset - g.dataOffset) % 32, 0);
      const got = new Uint8Array(info.byteLength);
      g.readInto(t.name, got);
      assert.deepEqual(got, typeof t.data === 'function' ? t.data() : t.data);
    }
  } finally {
    g.close();
  }
});

test('GGUF reader reads the llama.cpp-written fixture: ne reversed into [rows, cols]', () => {
  const g = openGguf(path.join(fixtureDir('models/qwen2-tiny-tied'), 'model-f32.gguf'));
  assert.equal(g.metadata.get('general.architecture'), 'qwen2');
  assert.deepEqual(g.tensors.get('blk.0.attn_k.weight')!.shape, [32, 64]);
  assert.deepEqual(g.tensors.get('blk.0.ffn_down.weight')!.shape, [64, 128]);
  assert.equal((g.metadata.get('tokenizer.ggml.tokens') as string[]).length, 320);
  g.close();
});

// Corrupt files: every case must give an Error naming the file, never a crash or a huge allocation.
function corrupt(name: string, mutate: (b: Buffer) => Buffer): string {
  const src = fs.readFileSync(path.join(fixtureDir('models/qwen2-tiny-tied'), 'model-f32.gguf'));
  const f = path.join(dir, name);
  fs.writeFileSync(f, mutate(Buffer.from(src)));
  return f;
}
function headerEnd(b: Buffer): number {
  // offset of the first tensor name "token_embd.weight" in the tensor-info table, minus its u64 length
  return b.indexOf('token_embd.weight') - 8;
}

const CASES: [string, (b: Buffer) => Buffer, RegExp][] = [
  ['truncated-header.gguf', (b) => b.subarray(0, 1000), /past the end of the file|truncated/],
  ['truncated-data.gguf', (b) => b.subarray(0, b.length - 100), /tensor 'output_norm.weight'.*past the end of the file/],
  ['empty.gguf', () => Buffer.alloc(0), /too small/],
  [
    'bad-magic.gguf',
    (b) => {
      b.write('GGUX', 0, 'latin1');
      return b;
    },
    /not a GGUF file/,
  ],
  [
    'version-1.gguf',
    (b) => {
      b.writeUInt32LE(1, 4);
      return b;
    },
    /version 1 is not supported/,
  ],
  [
    'absurd-tensor-count.gguf',
    (b) => {
      b.writeBigUInt64LE(1n << 40n, 8);
      return b;
    },
    /more than the file can hold/,
  ],
  [
    'absurd-kv-count.gguf',
    (b) => {
      b.writeBigUInt64LE(0xffffffffffffn, 16);
      return b;
    },
    /more than the file can hold|absurdly large/,
  ],
  [
    'absurd-string.gguf',
    (b) => {
      b.writeBigUInt64LE(1n << 50n, 24);
      return b;
    },
    /metadata key #0.*(past the end|absurdly)/,
  ],
  [
    'bad-value-type.gguf',
    (b) => {
      b.writeUInt32LE(99, 24 + 8 + 'general.architecture'.length);
      return b;
    },
    /unknown GGUF value type 99/,
  ],
  [
    'absurd-array.gguf',
    (b) => {
      const at = b.indexOf('tokenizer.ggml.tokens') + 'tokenizer.ggml.tokens'.length + 8; // after value type and element type
      b.writeBigUInt64LE(1n << 45n, at);
      return b;
    },
    /tokenizer.ggml.tokens' claims \d+ elements/,
  ],
  [
    'bad-ndims.gguf',
    (b) => {
      b.writeUInt32LE(7, headerEnd(b) + 8 + 'token_embd.weight'.length);
      return b;
    },
    /tensor 'token_embd.weight' has 7 dimensions/,
  ],
  [
    'bad-ggml-type.gguf',
    (b) => {
      b.writeUInt32LE(77, headerEnd(b) + 8 + 'token_embd.weight'.length + 4 + 16);
      return b;
    },
    /tensor 'token_embd.weight' has ggml type 77/,
  ],
  // ggml types that exist but qwen.ts does not read are refused by name, in one line
  ...(
    [
      [15, 'Q8_K'],
      [9, 'Q8_1'],
      [16, 'IQ2_XXS'],
      [17, 'IQ2_XS'],
      [18, 'IQ3_XXS'],
      [19, 'IQ1_S'],
      [21, 'IQ3_S'],
      [22, 'IQ2_S'],
      [29, 'IQ1_M'],
      [34, 'TQ1_0'],
      [35, 'TQ2_0'],
      [39, 'MXFP4'],
    ] as const
  ).map(([id, tname]): [string, (b: Buffer) => Buffer, RegExp] => [
    `type-${tname}.gguf`,
    (b) => {
      b.writeUInt32LE(id, headerEnd(b) + 8 + 'token_embd.weight'.length + 4 + 16);
      return b;
    },
    new RegExp(`^[^\\n]*tensor 'token_embd.weight' has ggml type ${id} \\(${tname}\\), which qwen.ts does not read[^\\n]*$`),
  ]),
  [
    'bad-offset.gguf',
    (b) => {
      b.writeBigUInt64LE(1n << 32n, headerEnd(b) + 8 + 'token_embd.weight'.length + 4 + 16 + 4);
      return b;
    },
    /tensor 'token_embd.weight'.*past the end of the file/,
  ],
  [
    'misaligned-offset.gguf',
    (b) => {
      b.writeBigUInt64LE(4n, headerEnd(b) + 8 + 'token_embd.weight'.length + 4 + 16 + 4);
      return b;
    },
    /tensor 'token_embd.weight' offset 4 is not aligned/,
  ],
  [
    'q8-bad-shape.gguf',
    (b) => {
      const at = headerEnd(b) + 8 + 'token_embd.weight'.length + 4 + 16; // type of token_embd ([64, 320]) -> Q8_0 ok; make ne0 = 50
      b.writeUInt32LE(8, at);
      b.writeBigUInt64LE(50n, at - 16);
      return b;
    },
    /tensor 'token_embd.weight' Q8_0 \[320, 50\]: innermost dimension 50 is not a multiple/,
  ],
];

for (const [name, mutate, re] of CASES) {
  test(`corrupt GGUF (${name}) gives a clear error`, () => {
    const f = corrupt(name, mutate);
    assert.throws(
      () => openGguf(f).close(),
      (e: Error) => {
        assert.equal(e.name, 'QwenError', e.stack);
        assert.ok(e.message.includes(f), e.message);
        assert.match(e.message, re);
        return true;
      },
    );
  });
}
