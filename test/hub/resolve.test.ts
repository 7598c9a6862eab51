// resolveModel, the hook `logits`, `run`, `serve` and `bench` call on their --model / model argument:
// paths pass through, a hub id is pulled on first use and served from the cache afterwards (no
// network), and the pulled snapshot gives the same logits and answers a chat with `qwen-ts run`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { ROOT } from '../helpers.js';
import { resolveModel } from '../../src/hub/resolve.js';
import { SILENT } from '../../src/hub/progress.js';
import { run as logits } from '../../src/cli/logits.js';
import { run as chatRun } from '../../src/cli/run.js';
import { startFixtureHub, TINY_MODEL } from './fixture_hub.js';
import { capture, freshCache, hubOpts, logitsOf } from './util.js';

const hub = await startFixtureHub();
after(() => hub.close());

test('paths and non-ids pass through untouched', async () => {
  assert.equal(await resolveModel(TINY_MODEL), TINY_MODEL);
  const gguf = path.join(TINY_MODEL, 'model-f32.gguf');
  assert.equal(await resolveModel(gguf), gguf);
  for (const s of ['./missing', '/nowhere/model', 'missing.gguf', 'a/b/c.safetensors']) assert.equal(await resolveModel(s, { offline: true }), s);
});

test('a hub id is pulled on first use, then found in the cache with the hub gone', async () => {
  const cache = freshCache();
  const local = await startFixtureHub();
  const opts = hubOpts(local, cache, { progress: SILENT });
  const p = await resolveModel('Qwen/tiny-qwen2', opts);
  assert.equal(p, path.join(cache, 'models--Qwen--tiny-qwen2', 'snapshots', local.repos.get('Qwen/tiny-qwen2')!.commit));
  await local.close();
  assert.equal(await resolveModel('Qwen/tiny-qwen2', { ...opts, endpoint: local.url }), p);
  assert.equal(await resolveModel('hf:Qwen/tiny-qwen2@main', { ...opts, endpoint: local.url }), p);
  // a snapshot missing its weights is not taken: it is pulled again
  fs.rmSync(path.join(p, 'model.safetensors'));
  await assert.rejects(
    resolveModel('Qwen/tiny-qwen2', { ...opts, endpoint: local.url, net: { ...opts.net!, retries: 0 } }),
    /listing Qwen\/tiny-qwen2: 127\.0\.0\.1:\d+: connection (refused|closed by the server), (ECONNREFUSED|UND_ERR_SOCKET) \(gave up after 1 attempt\)/,
  );
});

test('GGUF ids and ModelScope ids resolve too', async () => {
  const cache = freshCache();
  const g = await resolveModel('Qwen/tiny-qwen2/model-f32.gguf', hubOpts(hub, cache, { progress: SILENT }));
  assert.ok(g.endsWith('/model-f32.gguf'));
  const ms = await resolveModel('ms:Qwen/tiny-qwen2', hubOpts(hub, cache, { progress: SILENT }));
  assert.deepEqual(logitsOf(ms), logitsOf(TINY_MODEL));
});

test('logits end to end: pull from the hub, then `qwen-ts logits --model <resolved>` prints the same logits', async () => {
  const p = await resolveModel('Qwen/tiny-qwen2', hubOpts(hub, freshCache(), { progress: SILENT }));
  const fromHub = await capture(() => logits(['--model', p, '--tokens', '1,2,3']));
  const local = await capture(() => logits(['--model', TINY_MODEL, '--tokens', '1,2,3']));
  assert.equal(fromHub.out, local.out);
  assert.equal((JSON.parse(fromHub.out) as { logits: number[] }).logits.length, 320);
});

test('`qwen-ts run` answers with a model pulled from the hub', async () => {
  const p = await resolveModel('Qwen/tiny-qwen2', hubOpts(hub, freshCache(), { progress: SILENT }));
  const r = await capture(() => chatRun([p, 'hello', '--temperature', '0', '--max-tokens', '5', '--json']));
  const msg = JSON.parse(r.out) as { role: string; finish_reason: string; usage: { completion_tokens: number } };
  assert.equal(msg.role, 'assistant');
  assert.ok(msg.usage.completion_tokens > 0);
});

test('as a user types it: `qwen-ts run owner/name "prompt"` pulls from the hub (HF_ENDPOINT) and answers', async () => {
  const home = freshCache();
  const runCli = cliWithHub(home);
  const r = await runCli(['run', 'Qwen/tiny-qwen2', 'hello', '--temperature', '0', '--max-tokens', '4', '--json']);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).role, 'assistant');
  assert.ok(fs.existsSync(path.join(home, 'hub', 'models--Qwen--tiny-qwen2', 'refs', 'main')), 'pulled into $HF_HOME/hub');
  // second time: the complete snapshot in the cache is used as it is
  const again = await runCli(['run', 'Qwen/tiny-qwen2', 'hello', '--temperature', '0', '--max-tokens', '4', '--json']);
  assert.equal(again.code, 0, again.err);
  assert.equal(JSON.parse(again.out).content, JSON.parse(r.out).content);
});

test('the tokenizer commands take a hub id too', async () => {
  const runCli = cliWithHub(freshCache());
  const r = await runCli(['tokenize', '--model', 'Qwen/tiny-qwen2', '--text', 'hello']);
  assert.equal(r.code, 0, r.err);
  const local = await runCli(['tokenize', '--model', TINY_MODEL, '--text', 'hello']);
  assert.equal(r.out, local.out);
  assert.ok(JSON.parse(r.out).ids.length > 0);
});

/** Run the CLI as a user would, with HF_ENDPOINT pointing at the fixture hub and a fresh HF_HOME. */
function cliWithHub(home: string) {
  const env = { ...process.env, HF_ENDPOINT: hub.url, HF_HOME: home, HF_HUB_CACHE: '', HF_HUB_OFFLINE: '' };
  return (args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), ...args], { env });
      let out = '',
        err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, out, err }));
    });
}
