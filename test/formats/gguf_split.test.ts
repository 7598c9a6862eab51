// Split GGUF sets (NAME-00001-of-00003.gguf ...): shards written by llama.cpp's own gguf-split
// (test/fixtures/models/qwen2-tiny-split) load as the single file does, from any shard or the
// folder; writeGgufSplit writes gguf-split's exact bytes; a broken set is a one-line error naming
// the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf, type GgufKV } from '../../src/formats/gguf.js';
import { ggufSets, openGgufModel, parseSplitName, splitPath, writeGgufSplit } from '../../src/formats/gguf_split.js';
import { writeGguf, type GgufTensorOut } from '../../src/formats/gguf_writer.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { openChatModel } from '../../src/chat/engine.js';
import { fixtureDir, tmpDir } from '../helpers.js';

const SINGLE = path.join(fixtureDir('models/qwen2-tiny-tied'), 'model-f32.gguf');
const SPLIT = fixtureDir('models/qwen2-tiny-split');
const SHARDS = [1, 2, 3].map((i) => path.join(SPLIT, splitPath('model-f32', i, 3)));
const work = tmpDir();

function logits(p: string): Float32Array {
  const m = loadModel(p, { onNote: () => {} });
  const ids = [261, 72, 101, 108, 108, 111];
  return m.forward(
    ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
    [m.newCache(ids.length)],
  );
}

/** The single file's metadata and tensors, as the split writer takes them. */
function model(): { metadata: GgufKV[]; tensors: GgufTensorOut[] } {
  const g = openGguf(SINGLE);
  const metadata = [...g.metadata].map(([key, value]) => ({ key, value, type: g.metadataTypes.get(key)! }));
  const tensors = g.tensorList.map((t) => {
    const data = new Uint8Array(t.byteLength);
    g.readInto(t.name, data);
    return { name: t.name, dtype: t.dtype, shape: t.shape, data };
  });
  g.close();
  return { metadata, tensors };
}

function expectError(fn: () => unknown, file: string, re: RegExp) {
  assert.throws(fn, (e: Error) => {
    assert.equal(e.name, 'QwenError', e.stack);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    assert.ok(e.message.includes(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

test('split names: llama_split_path spelling, siblings grouped into sets', () => {
  assert.deepEqual(parseSplitName('a/b/Qwen3-Q8_0-00002-of-00003.gguf'), { prefix: 'a/b/Qwen3-Q8_0', no: 2, count: 3 });
  for (const n of ['x-00000-of-00003.gguf', 'x-00004-of-00003.gguf', 'x-0001-of-0003.gguf', 'x.gguf']) assert.equal(parseSplitName(n), undefined, n);
  assert.equal(splitPath('m', 7, 12), 'm-00007-of-00012.gguf');
  const sets = ggufSets(['m-00002-of-00003.gguf', 'm-00001-of-00003.gguf', 'one.gguf']);
  assert.deepEqual(
    sets.map((s) => [s.label, s.stem, s.missing]),
    [
      ['m-*-of-00003.gguf', 'm.gguf', ['m-00003-of-00003.gguf']],
      ['one.gguf', 'one.gguf', []],
    ],
  );
});

test("llama.cpp's gguf-split shards load as the single file does: from each shard, and from the folder", () => {
  const want = logits(SINGLE);
  for (const p of [...SHARDS, SPLIT]) assert.deepEqual(logits(p), want, p);
  const g = openGgufModel(SHARDS[1]!);
  try {
    const single = openGguf(SINGLE);
    assert.equal(g.path, SHARDS[0]);
    assert.deepEqual([...g.tensors.keys()].sort(), [...single.tensors.keys()].sort());
    assert.deepEqual(new Set(g.tensorList.map((t) => path.basename(t.file))), new Set(SHARDS.map((s) => path.basename(s))));
    // the split.* keys describe the files: the merged metadata is the model's
    assert.deepEqual([...g.metadata.keys()].sort(), [...single.metadata.keys()].sort());
    single.close();
  } finally {
    g.close();
  }
  // the tokenizer is in the first shard, whichever path is given
  const ids = loadTokenizer(SINGLE).encode('Hello world');
  for (const p of [SHARDS[2]!, SPLIT]) assert.deepEqual(loadTokenizer(p).encode('Hello world'), ids, p);
  assert.equal(openChatModel(SPLIT, 'split', { onNote: () => {} }).model.config.vocab_size, 320);
});

test("writeGgufSplit writes gguf-split's bytes (--split-max-tensors 10; and 12 with --no-tensor-first-split)", () => {
  const m = model();
  const ours = writeGgufSplit(path.join(work, 'ours'), { ...m, maxTensors: 10 });
  assert.deepEqual(
    ours.map((f) => path.basename(f)),
    SHARDS.map((f) => path.basename(f).replace('model-f32', 'ours')),
  );
  ours.forEach((f, i) => assert.ok(fs.readFileSync(f).equals(fs.readFileSync(SHARDS[i]!)), `${f} differs from gguf-split's`));
  // `llama-gguf-split --split-max-tensors 12 --no-tensor-first-split` on the same file (same build as the fixture)
  const nt = writeGgufSplit(path.join(work, 'nt'), { ...m, maxTensors: 12, noTensorFirstSplit: true });
  assert.deepEqual(nt.map(sha256), [
    'af60dd4dadfe876a99de852b359af3eef45e41e0214cfeb58a30fdc0331f74c9',
    'a68d35b4dc8190a20e46e0c53f334d9cd5ed32ab7d69f996bac8c0164ac50ad3',
    '5a44f9e95402cbe546a099d72032a1c1e58d6781bb18f1d1d7abe1e243323acc',
    '7cd4eb68dcc38ec35165c5f25c75ba30376d17f1342dacac983b5f2cc8442d1e',
  ]);
  assert.equal(openGguf(nt[0]!).tensors.size, 0); // metadata only
  assert.deepEqual(logits(nt[2]!), logits(SINGLE));
});

/** A fresh folder holding a split of the model. */
function splitInto(name: string, maxTensors: number, edit?: (m: ReturnType<typeof model>) => void): string[] {
  const dir = path.join(work, name);
  fs.mkdirSync(dir, { recursive: true });
  const m = model();
  edit?.(m);
  return writeGgufSplit(path.join(dir, 'm'), { ...m, maxTensors });
}

test('a missing shard is named, from any shard and from the folder', () => {
  const s = splitInto('missing', 10);
  fs.rmSync(s[1]!);
  for (const p of [s[0]!, s[2]!, path.dirname(s[0]!)])
    expectError(() => loadModel(p), s[1]!, /no such file: m-0000[13]-of-00003\.gguf is shard [13] of a split GGUF of 3 shards.*download every shard/);
  fs.rmSync(s[0]!);
  expectError(() => loadModel(s[2]!), s[0]!, /no such file.*2 are missing: m-00001-of-00003\.gguf, m-00002-of-00003\.gguf/);
});

test('shards of different sets: another tensor count, split.count, or split.no; a tensor in two shards', () => {
  // the same names from a model with one more tensor
  const a = splitInto('mixed-a', 10);
  const b = splitInto('mixed-b', 10, (m) => m.tensors.push({ ...m.tensors[1]!, name: 'blk.9.extra.weight' }));
  fs.copyFileSync(b[2]!, a[2]!);
  expectError(() => loadModel(a[0]!), a[2]!, /split\.tensors\.count = 27, but m-00001-of-00003\.gguf says 26; the files come from different split sets/);
  // a shard of a 4-shard set renamed into a 3-shard set
  const c = splitInto('count-a', 10);
  const d = splitInto('count-d', 7);
  fs.copyFileSync(d[1]!, c[1]!);
  expectError(() => loadModel(c[0]!), c[1]!, /split\.count = 4, but m-00001-of-00003\.gguf says the set has 3 shards/);
  expectError(() => loadModel(c[1]!), c[1]!, /the name says shard 2 of 3, but the file is shard 2 of 4 .*belongs to another split set/);
  // shard 3's file under shard 2's name
  const e = splitInto('no', 10);
  fs.copyFileSync(e[2]!, e[1]!);
  expectError(() => loadModel(e[0]!), e[1]!, /split\.no = 2, but its name makes it shard 2 of 3 \(split\.no 1\)/);
  // the same tensor in two shards (sets split 10 / 9 tensors at a time, shard 2 swapped)
  const f = splitInto('dup-f', 10);
  const g = splitInto('dup-g', 9);
  fs.copyFileSync(g[1]!, f[1]!);
  expectError(() => loadModel(f[0]!), f[1]!, /tensor 'blk\.[0-9]+\.[a-z_.]+' is also in m-00001-of-00003\.gguf; a tensor belongs to one shard only/);
});

test('a set that is short of tensors, a renamed shard, and a folder of several models', () => {
  const dir = path.join(work, 'short');
  fs.mkdirSync(dir);
  const m = model();
  const kv = (no: number): GgufKV[] => [
    { key: 'split.no', type: 'u16', value: no },
    { key: 'split.tensors.count', type: 'i32', value: 26 },
    { key: 'split.count', type: 'u16', value: 2 },
  ];
  writeGguf(path.join(dir, 'm-00001-of-00002.gguf'), { metadata: [...m.metadata, ...kv(0)], tensors: m.tensors.slice(0, 10) });
  writeGguf(path.join(dir, 'm-00002-of-00002.gguf'), { metadata: kv(1), tensors: m.tensors.slice(10, 20) });
  expectError(() => loadModel(dir), 'm-00001-of-00002.gguf', /split\.tensors\.count = 26, but the 2 shards hold 20 tensors/);
  const s = splitInto('renamed', 10);
  const renamed = path.join(path.dirname(s[0]!), 'model.gguf');
  fs.renameSync(s[0]!, renamed);
  expectError(() => loadModel(renamed), renamed, /shard 1 of 3 of a split GGUF, but its name does not end in -00001-of-00003\.gguf/);
  const two = path.join(work, 'two');
  fs.mkdirSync(two);
  for (const f of SHARDS) fs.copyFileSync(f, path.join(two, path.basename(f)));
  fs.copyFileSync(SINGLE, path.join(two, 'other.gguf'));
  expectError(() => loadModel(two), two, /holds several GGUF models \(model-f32-\*-of-00003\.gguf, other\.gguf\)/);
  fs.rmSync(path.join(two, 'other.gguf'));
  assert.equal(loadModel(two, { onNote: () => {} }).config.vocab_size, 320);
});
