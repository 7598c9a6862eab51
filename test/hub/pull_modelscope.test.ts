// Pulling from a local ModelScope stand-in, configured only through the environment
// (MODELSCOPE_DOMAIN as a full URL, MODELSCOPE_CACHE, MODELSCOPE_API_TOKEN): the api/v1 file list,
// verification against its Sha256, the cache layout under MODELSCOPE_CACHE, and the error cases.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pullModel } from '../../src/hub/pull.js';
import { modelscopeBase } from '../../src/hub/modelscope.js';
import { startFixtureHub, TINY_MODEL } from './fixture_hub.js';
import { FAST_NET, freshCache, logitsOf, tree } from './util.js';

const hub = await startFixtureHub();
after(() => hub.close());
const tiny = hub.repos.get('Qwen/tiny-qwen2')!;

function msOpts(extra: Record<string, string> = {}) {
  const root = freshCache();
  const env = { MODELSCOPE_DOMAIN: hub.url, MODELSCOPE_CACHE: path.join(root, 'ms'), HF_HOME: path.join(root, 'hf'), ...extra };
  return { root, opts: { env, net: FAST_NET, freeBytes: async () => undefined } };
}

test("ms: pulls into $MODELSCOPE_CACHE in the HF layout, blobs named by the list's Sha256, and loads", async () => {
  const { root, opts } = msOpts();
  const r = await pullModel('ms:Qwen/tiny-qwen2', opts);
  assert.equal(r.hub, 'modelscope');
  assert.equal(r.revision, 'master');
  const dir = path.join(root, 'ms', 'models--Qwen--tiny-qwen2');
  assert.equal(r.path, path.join(dir, 'snapshots', r.commit));
  assert.equal(fs.readFileSync(path.join(dir, 'refs', 'master'), 'utf8'), r.commit);
  const blobs = tree(path.join(dir, 'blobs'));
  assert.deepEqual(blobs, r.files.map((p) => tiny.files.find((f) => f.path === p)!.sha256).sort());
  assert.ok(!fs.existsSync(path.join(root, 'hf')), 'nothing in the Hugging Face cache');
  assert.ok(hub.log.some((e) => e.url === '/api/v1/models/Qwen/tiny-qwen2/repo/files?Revision=master&Recursive=true'));
  assert.ok(hub.log.some((e) => e.url.startsWith('/api/v1/models/Qwen/tiny-qwen2/repo?Revision=master&FilePath=model.safetensors')));
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
  // the same list gives the same snapshot; --hub overrides the id
  const again = await pullModel('Qwen/tiny-qwen2', { ...opts, hub: 'modelscope' });
  assert.equal(again.commit, r.commit);
  assert.equal(again.downloaded, 0);
});

test('ms: a connection cut mid-file is resumed', async () => {
  const { opts } = msOpts();
  hub.faults.drop.set('model.safetensors', 1);
  const r = await pullModel('ms:Qwen/tiny-qwen2', opts);
  assert.ok(hub.log.some((e) => e.url.startsWith('/oss/') && /^bytes=\d+-$/.test(e.range ?? '')));
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('ms: a file whose bytes do not match the listed Sha256 is refused', async () => {
  const { root, opts } = msOpts();
  await assert.rejects(pullModel('ms:Qwen/bad-sha', opts), /Qwen\/bad-sha\/config\.json: the downloaded bytes do not match the hub's sha256 \(expected (ab){32}, got [0-9a-f]{64}\)/);
  assert.deepEqual(fs.readdirSync(path.join(root, 'ms', 'models--Qwen--bad-sha', 'blobs')), []);
});

test('ms: unknown, private and path-escaping models', async () => {
  const { opts } = msOpts();
  await assert.rejects(pullModel('ms:Qwen/nope', opts), /model 'Qwen\/nope' was not found on ModelScope \(http:\/\/127\.0\.0\.1:\d+\) \(HTTP 404: model Qwen\/nope not exist\)/);
  await assert.rejects(pullModel('ms:Qwen/gated', opts), /'Qwen\/gated' on ModelScope is private or needs approval: set MODELSCOPE_API_TOKEN \(HTTP 401/);
  const ok = msOpts({ MODELSCOPE_API_TOKEN: 'hf_secret' });
  assert.ok(fs.existsSync(path.join((await pullModel('ms:Qwen/gated', ok.opts)).path, 'config.json')));
  await assert.rejects(pullModel('ms:Qwen/evil-dotdot', opts), /the hub's file list has the path "\.\.\/\.\.\/\.\.\/evil\.json", which would leave the model's cache folder/);
});

test('MODELSCOPE_DOMAIN: a host means https, a URL is used as is', () => {
  assert.equal(modelscopeBase({}), 'https://www.modelscope.cn');
  assert.equal(modelscopeBase({ MODELSCOPE_DOMAIN: 'modelscope.cn' }), 'https://modelscope.cn');
  assert.equal(modelscopeBase({ MODELSCOPE_DOMAIN: 'http://127.0.0.1:8080/' }), 'http://127.0.0.1:8080');
});
