// Pulling from a local Hugging Face stand-in: the files chosen, the cache layout huggingface_hub
// uses (so each side reuses the other's downloads), reuse without refetching, offline mode, the tree
// API fallback, GGUF and sharded repos, a renamed repo, and the pulled model giving the same logits.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pullModel } from '../../src/hub/pull.js';
import { QwenError } from '../../src/errors.js';
import { startFixtureHub, TINY_MODEL } from './fixture_hub.js';
import { freshCache, hubOpts, logitsOf, tree } from './util.js';

const hub = await startFixtureHub();
after(() => hub.close());
const tiny = hub.repos.get('Qwen/tiny-qwen2')!;
const file = (p: string) => tiny.files.find((f) => f.path === p)!;
const contentGets = () => hub.log.filter((e) => /\/(resolve|cdn)\//.test(e.url) && e.method === 'GET').length;

test('pulls config, tokenizer, card and safetensors into the huggingface_hub layout, and they load', async () => {
  const cache = freshCache();
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { token: 'hf_tok' }));
  const dir = path.join(cache, 'models--Qwen--tiny-qwen2');
  assert.equal(r.commit, tiny.commit);
  assert.equal(r.path, path.join(dir, 'snapshots', tiny.commit));
  assert.deepEqual([...r.files].sort(), ['README.md', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  // blobs are named by etag: sha256 for LFS files, git sha1 for the rest; snapshot entries are relative links
  const expect = r.files.map((p) => {
    const f = file(p);
    return `snapshots/${tiny.commit}/${p}->../../blobs/${f.lfs ? f.sha256 : f.gitSha1}`;
  });
  const blobs = r.files.map((p) => `blobs/${file(p).lfs ? file(p).sha256 : file(p).gitSha1}`);
  assert.deepEqual(tree(dir), [...blobs, 'refs/main', ...expect].sort());
  assert.equal(fs.readFileSync(path.join(dir, 'refs', 'main'), 'utf8'), tiny.commit); // no newline, as Python writes it
  for (const p of ['A.prefill_logits.f32', 'model-f32.gguf', '.gitattributes']) assert.equal(hub.fetches(p).length, 0, `${p} must not be fetched`);
  // the token goes to the hub, never to the CDN the LFS files redirect to
  const st = hub.fetches('model.safetensors');
  assert.ok(st.some((e) => e.url.includes('/resolve/') && e.auth === 'Bearer hf_tok'));
  assert.ok(st.some((e) => e.url.startsWith('/cdn/') && e.auth === undefined));
  assert.ok(r.downloaded > 190_000);
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('a second pull reuses every blob; offline mode needs no server at all', async () => {
  const cache = freshCache();
  const first = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache));
  const gets = contentGets();
  const again = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache));
  assert.equal(contentGets(), gets);
  assert.equal(again.downloaded, 0);
  assert.equal(again.path, first.path);
  const n = hub.log.length;
  const off = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { env: { HF_HUB_OFFLINE: '1', HF_HOME: cache } }));
  assert.equal(off.path, first.path);
  assert.equal(hub.log.length, n);
  await assert.rejects(
    pullModel('Qwen/tiny-qwen2-GGUF', hubOpts(hub, cache, { offline: true })),
    (e: Error) => e instanceof QwenError && /offline .*Qwen\/tiny-qwen2-GGUF@main.* not complete in the cache/.test(e.message),
  );
});

test('a cache written by Python tools (blobs, snapshot links, refs/main) is used without downloading', async () => {
  const cache = freshCache();
  const dir = path.join(cache, 'models--Qwen--tiny-qwen2');
  const old = 'f'.repeat(40); // an older snapshot Python fetched: same blobs, other commit
  for (const f of tiny.files) {
    const etag = f.lfs ? f.sha256 : f.gitSha1;
    fs.mkdirSync(path.join(dir, 'blobs'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'blobs', etag), f.data);
    fs.mkdirSync(path.join(dir, 'snapshots', old), { recursive: true });
    fs.symlinkSync(`../../blobs/${etag}`, path.join(dir, 'snapshots', old, f.path));
  }
  fs.mkdirSync(path.join(dir, 'refs'));
  fs.writeFileSync(path.join(dir, 'refs', 'main'), old);
  const gets = contentGets();
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache));
  assert.equal(contentGets(), gets);
  assert.equal(r.downloaded, 0);
  assert.equal(fs.readFileSync(path.join(dir, 'refs', 'main'), 'utf8'), tiny.commit);
  assert.ok(fs.existsSync(path.join(dir, 'snapshots', tiny.commit, 'model.safetensors')));
});

test('siblings without sizes and hashes: the paged tree API gives them', async () => {
  const cache = freshCache();
  const r = await pullModel('Qwen/tiny-tree', hubOpts(hub, cache));
  const trees = hub.log.filter((e) => e.url.startsWith('/api/models/Qwen/tiny-tree/tree/'));
  assert.ok(trees.length >= 3, 'several pages');
  assert.ok(trees.every((e) => e.url.includes('recursive=true')));
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('--file takes one GGUF; a GGUF-only repo gives its GGUF; the path loads', async () => {
  const cache = freshCache();
  const before = hub.fetches('model.safetensors').length;
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { file: 'model-f32.gguf' }));
  assert.equal(r.path, path.join(cache, 'models--Qwen--tiny-qwen2', 'snapshots', tiny.commit, 'model-f32.gguf'));
  assert.deepEqual(r.files.sort(), ['README.md', 'model-f32.gguf']);
  assert.equal(hub.fetches('model.safetensors').length, before);
  const ref = logitsOf(path.join(TINY_MODEL, 'model-f32.gguf'));
  assert.deepEqual(logitsOf(r.path), ref);
  const g = await pullModel('Qwen/tiny-qwen2-GGUF', hubOpts(hub, cache));
  assert.match(g.path, /snapshots\/[0-9a-f]{40}\/tiny-qwen2-f32\.gguf$/);
  assert.deepEqual(logitsOf(g.path), ref);
  const viaId = await pullModel('Qwen/tiny-qwen2/model-f32.gguf', hubOpts(hub, cache));
  assert.equal(viaId.path, r.path);
  await assert.rejects(pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { file: 'nope.gguf' })), /has no file 'nope\.gguf'; its GGUF files: model-f32\.gguf/);
});

test('a sharded model: the index decides which safetensors are fetched', async () => {
  const cache = freshCache();
  const r = await pullModel('Qwen/tiny-indexed', hubOpts(hub, cache));
  assert.ok(r.files.includes('model.safetensors.index.json') && r.files.includes('model.safetensors'));
  assert.equal(hub.fetches('consolidated.safetensors').length, 0);
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('a renamed repo (relative redirect) and a pinned commit', async () => {
  const cache = freshCache();
  const r = await pullModel('Qwen/old-name', hubOpts(hub, cache));
  assert.equal(r.commit, tiny.commit);
  assert.ok(fs.existsSync(path.join(cache, 'models--Qwen--old-name', 'snapshots', tiny.commit, 'config.json')));
  const c = freshCache();
  const p = await pullModel(`Qwen/tiny-qwen2@${tiny.commit}`, hubOpts(hub, c));
  assert.equal(p.revision, tiny.commit);
  assert.ok(!fs.existsSync(path.join(c, 'models--Qwen--tiny-qwen2', 'refs')), 'a commit needs no ref');
  await assert.rejects(pullModel('Qwen/tiny-qwen2@v9', hubOpts(hub, c)), /has no revision 'v9' on Hugging Face \(HTTP 404/);
});
