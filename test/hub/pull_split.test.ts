// Split GGUF repos (big models ship as NAME-00001-of-0000N.gguf, often one folder per
// quantisation): the pull takes every shard of the chosen quantisation and nothing else, the cache
// finds the complete set again offline, and the pulled set loads as the single file does.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pullModel } from '../../src/hub/pull.js';
import { resolveModel } from '../../src/hub/resolve.js';
import { selectFiles } from '../../src/hub/select.js';
import { SILENT } from '../../src/hub/progress.js';
import { fixtureFile, makeRepo, startFixtureHub, TINY_MODEL } from './fixture_hub.js';
import { freshCache, hubOpts, logitsOf } from './util.js';
import { openGguf } from '../../src/formats/gguf.js';
import { writeGgufSplit } from '../../src/formats/gguf_split.js';
import { tmpDir } from '../helpers.js';

const SPLIT = path.join(TINY_MODEL, '..', 'qwen2-tiny-split');
const shard = (i: number) => fs.readFileSync(path.join(SPLIT, `model-f32-0000${i}-of-00003.gguf`));
const single = fs.readFileSync(path.join(TINY_MODEL, 'model-f32.gguf'));
// another set of other bytes (blobs are stored by content): the model split 12 tensors at a time
const other = (() => {
  const g = openGguf(path.join(TINY_MODEL, 'model-f32.gguf'));
  const metadata = [...g.metadata].map(([key, value]) => ({ key, value, type: g.metadataTypes.get(key)! }));
  const tensors = g.tensorList.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    data: () => {
      const b = new Uint8Array(t.byteLength);
      g.readInto(t.name, b);
      return b;
    },
  }));
  const files = writeGgufSplit(path.join(tmpDir(), 'other'), { metadata, tensors, maxTensors: 12 });
  g.close();
  return (i: number) => fs.readFileSync(files[i - 1]!);
})();

const hub = await startFixtureHub([
  makeRepo('Qwen/tiny-split-GGUF', [
    // the preferred quantisation is a split set in a folder; another set and a single file beside it
    ...[1, 2, 3].map((i) => fixtureFile(`Q8_0/tiny-Q8_0-0000${i}-of-00003.gguf`, shard(i))),
    ...[1, 2, 3].map((i) => fixtureFile(`F32/tiny-F32-0000${i}-of-00003.gguf`, other(i))),
    fixtureFile('tiny-IQ2_XS.gguf', single),
    fixtureFile('README.md', Buffer.from('# tiny split\n')),
  ]),
]);
after(() => hub.close());

test('file selection: a split set is one candidate, every shard is taken, a shard short is refused', () => {
  const f = (...ps: string[]) => ps.map((p) => ({ path: p, size: 1, oid: 'a'.repeat(64) }));
  const s = selectFiles(f('README.md', 'm-Q4_K_M-00002-of-00002.gguf', 'm-Q4_K_M-00001-of-00002.gguf', 'm-Q8_0.gguf'), 'o/n');
  assert.equal(s.gguf, 'm-Q4_K_M-00001-of-00002.gguf');
  assert.deepEqual(
    s.files.map((x) => x.path),
    ['m-Q4_K_M-00001-of-00002.gguf', 'm-Q4_K_M-00002-of-00002.gguf', 'README.md'],
  );
  // --file with any shard names the whole set
  const byShard = selectFiles(f('a/m-F16-00001-of-00002.gguf', 'a/m-F16-00002-of-00002.gguf'), 'o/n', 'm-F16-00002-of-00002.gguf');
  assert.deepEqual([byShard.gguf, byShard.files.length], ['a/m-F16-00001-of-00002.gguf', 2]);
  assert.throws(() => selectFiles(f('m-Q8_0-00001-of-00003.gguf', 'm-Q8_0-00003-of-00003.gguf'), 'o/n'), /has 2 of the 3 shards of m-Q8_0-\*-of-00003\.gguf; missing: m-Q8_0-00002-of-00003\.gguf/);
  assert.throws(() => selectFiles(f('a-IQ2_XS-00001-of-00002.gguf', 'a-IQ2_XS-00002-of-00002.gguf', 'a-IQ3_M.gguf'), 'o/n'), /choose one with --file: a-IQ2_XS-\*-of-00002\.gguf, a-IQ3_M\.gguf/);
});

test('a pull takes every shard of the preferred quantisation, and the set loads', async () => {
  const cache = freshCache();
  const r = await pullModel('Qwen/tiny-split-GGUF', hubOpts(hub, cache));
  assert.deepEqual([...r.files].sort(), ['Q8_0/tiny-Q8_0-00001-of-00003.gguf', 'Q8_0/tiny-Q8_0-00002-of-00003.gguf', 'Q8_0/tiny-Q8_0-00003-of-00003.gguf', 'README.md']);
  assert.ok(r.path.endsWith('/Q8_0/tiny-Q8_0-00001-of-00003.gguf'), r.path);
  for (const p of ['F32/tiny-F32-00001-of-00003.gguf', 'tiny-IQ2_XS.gguf']) assert.equal(hub.fetches(p).length, 0, `${p} must not be fetched`);
  const want = logitsOf(path.join(TINY_MODEL, 'model-f32.gguf'));
  assert.deepEqual(logitsOf(r.path), want);
  // found again in the cache without the network; a shard gone means the copy is incomplete
  assert.equal(await resolveModel('Qwen/tiny-split-GGUF', hubOpts(hub, cache, { offline: true, progress: SILENT })), r.path);
  fs.rmSync(path.join(path.dirname(r.path), 'tiny-Q8_0-00002-of-00003.gguf'));
  await assert.rejects(pullModel('Qwen/tiny-split-GGUF', hubOpts(hub, cache, { offline: true })), /not complete in the cache/);
});

test('--file with one shard (or an id naming it) pulls the whole set', async () => {
  const cache = freshCache();
  const r = await pullModel('Qwen/tiny-split-GGUF', hubOpts(hub, cache, { file: 'tiny-F32-00003-of-00003.gguf' }));
  assert.deepEqual([...r.files].sort(), ['F32/tiny-F32-00001-of-00003.gguf', 'F32/tiny-F32-00002-of-00003.gguf', 'F32/tiny-F32-00003-of-00003.gguf', 'README.md']);
  assert.ok(r.path.endsWith('/F32/tiny-F32-00001-of-00003.gguf'), r.path);
  const viaId = await resolveModel('Qwen/tiny-split-GGUF/F32/tiny-F32-00002-of-00003.gguf', hubOpts(hub, cache, { progress: SILENT }));
  assert.equal(viaId, r.path);
  assert.deepEqual(logitsOf(viaId), logitsOf(path.join(TINY_MODEL, 'model-f32.gguf')));
});
