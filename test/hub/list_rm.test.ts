// `qwen-ts pull`, `list` and `rm` as commands (in this process, configured by the environment as a
// user would): the listing's size, revision, architecture, quantisation and base-model lineage for
// safetensors and GGUF models on both hubs, and removal of a model or of one snapshot.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run as pull } from '../../src/cli/pull.js';
import { run as list } from '../../src/cli/list.js';
import { run as rm } from '../../src/cli/rm.js';
import { listCached, removeCached } from '../../src/hub/catalog.js';
import { QwenError } from '../../src/errors.js';
import { startFixtureHub } from './fixture_hub.js';
import { capture, freshCache } from './util.js';

const hub = await startFixtureHub();
after(() => hub.close());
const tiny = hub.repos.get('Qwen/tiny-qwen2')!;
const root = freshCache();
const env = { HF_HOME: path.join(root, 'hf'), MODELSCOPE_CACHE: path.join(root, 'ms') };
Object.assign(process.env, env, { HF_ENDPOINT: hub.url, MODELSCOPE_DOMAIN: hub.url, HF_HUB_OFFLINE: '' });
delete process.env.HF_TOKEN;

const sizeOf = (paths: string[]) => paths.reduce((a, p) => a + tiny.files.find((f) => f.path === p)!.data.length, 0);

test('pull prints the local path on stdout and plain progress lines on a non-TTY stderr', async () => {
  const r = await capture(() => pull(['Qwen/tiny-qwen2']));
  assert.equal(r.out, path.join(env.HF_HOME, 'hub', 'models--Qwen--tiny-qwen2', 'snapshots', tiny.commit) + '\n');
  assert.match(r.err, /^pulling Hugging Face Qwen\/tiny-qwen2@main \(commit [0-9a-f]{12}\): 6 files, 6 to download \(.*\)\n/);
  assert.match(r.err, /\n {2}downloaded +187\.7 KB {2}model\.safetensors\n/);
  assert.doesNotMatch(r.err, /\x1b\[/, 'no terminal escapes when stderr is not a TTY');
  await capture(() => pull(['Qwen/tiny-qwen2-GGUF', '--quiet']));
  await capture(() => pull(['Qwen/tiny-qwen2', '--hub', 'modelscope', '-q']));
  await assert.rejects(pull([]), /expected one model id/);
  await assert.rejects(pull(['Qwen/tiny-qwen2', '--hub', 'github']), /unknown hub 'github': use hf or modelscope/);
});

test('list: size, revision, architecture, quantisation and base model of each cached model', async () => {
  const models = listCached({ env });
  assert.deepEqual(
    models.map((m) => `${m.hub}:${m.repo}`),
    ['hf:Qwen/tiny-qwen2', 'hf:Qwen/tiny-qwen2-GGUF', 'modelscope:Qwen/tiny-qwen2'],
  );
  const [st, gg] = models;
  const s = st!.snapshots[0]!;
  const files = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'README.md', 'model.safetensors'];
  assert.deepEqual(
    { ...s, dir: undefined, path: undefined },
    {
      commit: tiny.commit,
      refs: ['main'],
      dir: undefined,
      path: undefined,
      format: 'safetensors',
      size: sizeOf(files),
      architecture: 'Qwen2ForCausalLM',
      quantization: 'bfloat16',
      baseModel: ['Qwen/Qwen2-0.5B'],
      relation: 'finetune',
    },
  );
  assert.equal(st!.size, sizeOf(files));
  const g = gg!.snapshots[0]!;
  assert.deepEqual([g.format, g.architecture, g.quantization, g.baseModel, g.relation], ['gguf', 'qwen2', 'F32', ['Qwen/tiny-qwen2'], 'quantized']);
  assert.ok(g.path!.endsWith('tiny-qwen2-f32.gguf'));
  const r = await capture(() => list([]));
  const lines = r.out.trimEnd().split('\n');
  assert.match(lines[0]!, /^MODEL +REVISION +SIZE +ARCHITECTURE +QUANT +BASE MODEL$/);
  assert.match(lines[1]!, new RegExp(`^Qwen/tiny-qwen2 +main \\(${tiny.commit.slice(0, 7)}\\) +.*KB +Qwen2ForCausalLM +bfloat16 +Qwen/Qwen2-0\\.5B \\(finetune\\)$`));
  assert.match(lines[2]!, /^Qwen\/tiny-qwen2-GGUF +main \([0-9a-f]{7}\) +377\.\d KB +qwen2 +F32 +Qwen\/tiny-qwen2 \(quantized\)$/);
  assert.match(lines[3]!, /^ms:Qwen\/tiny-qwen2 +master \([0-9a-f]{7}\) /);
  const j = JSON.parse((await capture(() => list(['--json', '--hub', 'ms']))).out) as { repo: string }[];
  assert.deepEqual(
    j.map((m) => m.repo),
    ['Qwen/tiny-qwen2'],
  );
});

test('rm @revision drops one snapshot and only the blobs no other snapshot uses; rm drops the model', async () => {
  const dir = path.join(env.HF_HOME, 'hub', 'models--Qwen--tiny-qwen2');
  // an older snapshot sharing all blobs but the config
  const old = 'e'.repeat(40);
  const cfg = Buffer.from('{"model_type": "qwen2"}');
  fs.writeFileSync(path.join(dir, 'blobs', 'c'.repeat(40)), cfg);
  fs.mkdirSync(path.join(dir, 'snapshots', old));
  fs.symlinkSync(`../../blobs/${'c'.repeat(40)}`, path.join(dir, 'snapshots', old, 'config.json'));
  fs.symlinkSync(`../../blobs/${tiny.files.find((f) => f.path === 'model.safetensors')!.sha256}`, path.join(dir, 'snapshots', old, 'model.safetensors'));
  fs.writeFileSync(path.join(dir, 'refs', 'v1'), old);
  // through a symlinked HF_HOME (blobs are compared by resolved path): only the config blob goes
  const linked = `${env.HF_HOME}-link`;
  fs.symlinkSync(env.HF_HOME, linked);
  const r = removeCached(`Qwen/tiny-qwen2@v1`, { env: { ...env, HF_HOME: linked }, hub: 'hf' });
  assert.deepEqual(r, { removed: [path.join(linked, 'hub', 'models--Qwen--tiny-qwen2', 'snapshots', old)], freed: cfg.length });
  assert.ok(!fs.existsSync(path.join(dir, 'refs', 'v1')));
  assert.equal(listCached({ env, hubs: ['hf'] })[0]!.snapshots[0]!.path, path.join(dir, 'snapshots', tiny.commit), 'the main snapshot still loads');

  const out = (await capture(() => rm(['Qwen/tiny-qwen2']))).out;
  assert.match(out, /^removed .*models--Qwen--tiny-qwen2, .*ms.*models--Qwen--tiny-qwen2 \(.* freed\)\n$/);
  assert.ok(!fs.existsSync(dir));
  assert.deepEqual(
    listCached({ env }).map((m) => m.repo),
    ['Qwen/tiny-qwen2-GGUF'],
  );
  assert.throws(
    () => removeCached('Qwen/tiny-qwen2', { env }),
    (e: Error) => e instanceof QwenError && /Qwen\/tiny-qwen2 is not in the cache \(looked in .*hub and .*ms\)/.test(e.message),
  );
  assert.throws(() => removeCached('../etc', { env }), /is not a model id/);
});
