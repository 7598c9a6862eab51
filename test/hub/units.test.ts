// The pure pieces of the hub: model ids, path and revision checks, ETag handling, file selection,
// model-card parsing, cache roots from the environment, and progress output (TTY and not).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { checkRevision, looksLikeModelRef, normalizeEtag, hashKind, parseModelRef, repoFolderName, repoFromFolder, safeRepoPath } from '../../src/hub/ids.js';
import { selectFiles } from '../../src/hub/select.js';
import { cardBaseModel } from '../../src/hub/catalog.js';
import { hfCacheRoot, isOffline, modelscopeCacheRoot } from '../../src/hub/cache.js';
import { streamProgress } from '../../src/hub/progress.js';
import { QwenError } from '../../src/errors.js';

test('model ids: owner/name, @revision, hub prefix, a GGUF file inside', () => {
  assert.deepEqual(parseModelRef('Qwen/Qwen2.5-0.5B-Instruct'), { hub: undefined, repo: 'Qwen/Qwen2.5-0.5B-Instruct', revision: undefined, file: undefined });
  assert.deepEqual(parseModelRef('ms:qwen/Qwen3-0.6B@v1.0'), { hub: 'modelscope', repo: 'qwen/Qwen3-0.6B', revision: 'v1.0', file: undefined });
  assert.deepEqual(parseModelRef('hf:Qwen/Q-GGUF/sub/q8_0.gguf@refs/pr/1'), { hub: 'hf', repo: 'Qwen/Q-GGUF', revision: 'refs/pr/1', file: 'sub/q8_0.gguf' });
  for (const bad of ['Qwen', 'Qwen/', '/Qwen/x', 'Qwen/a--b', 'Qwen/..', 'a b/c', 'Qwen/x@', 'Qwen/x@../../etc', 'Qwen/x/../y.gguf']) {
    assert.throws(() => parseModelRef(bad), QwenError, bad);
  }
  assert.ok(looksLikeModelRef('Qwen/Qwen3-0.6B'));
  assert.ok(looksLikeModelRef('Qwen/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf'));
  for (const p of ['./Qwen/x', '/models/x', '~/x/y', 'C:\\x\\y', 'models/x/config.json', 'x.gguf']) assert.ok(!looksLikeModelRef(p), p);
});

test('paths from a file list and revisions cannot leave the cache', () => {
  assert.equal(safeRepoPath('sub/dir/model.gguf', 'x'), 'sub/dir/model.gguf');
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'C:/x', 'a\\..\\x', 'a//b', './a', '', 'a\0b', 42]) {
    assert.throws(() => safeRepoPath(bad, 'file list'), /would leave the model's cache folder/, String(bad));
  }
  assert.equal(checkRevision('refs/pr/12'), 'refs/pr/12');
  for (const bad of ['', '../main', '/main', 'a/../../b', 'a\\b']) assert.throws(() => checkRevision(bad), /not a usable revision/);
});

test('ETags: quotes and W/ removed; sha256 vs git sha1; cache folder names', () => {
  assert.equal(normalizeEtag('W/"abc"'), 'abc');
  assert.equal(normalizeEtag('"abc"'), 'abc');
  assert.equal(normalizeEtag(null), undefined);
  assert.equal(hashKind('a'.repeat(64)), 'sha256');
  assert.equal(hashKind('a'.repeat(40)), 'git-sha1');
  assert.equal(hashKind('d41d8cd98f00b204e9800998ecf8427e'), undefined); // an S3 MD5 is not trusted
  assert.equal(repoFolderName('Qwen/Qwen2-0.5B'), 'models--Qwen--Qwen2-0.5B');
  assert.equal(repoFromFolder('models--Qwen--Qwen2-0.5B'), 'Qwen/Qwen2-0.5B');
  assert.equal(repoFromFolder('datasets--a--b'), undefined);
});

test('file selection: safetensors and side files, else the preferred GGUF, else a clear refusal', () => {
  const f = (...ps: string[]) => ps.map((p) => ({ path: p, size: 1, oid: 'a'.repeat(64) }));
  const s = selectFiles(f('config.json', 'model.safetensors', 'pytorch_model.bin', 'onnx/model.onnx', 'merges.txt', 'vocab.json', 'LICENSE'), 'o/n');
  assert.deepEqual(
    s.files.map((x) => x.path),
    ['config.json', 'vocab.json', 'merges.txt', 'model.safetensors'],
  );
  const idx = selectFiles(f('config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors'), 'o/n');
  assert.equal(idx.index?.path, 'model.safetensors.index.json');
  const gg = selectFiles(f('README.md', 'm-Q2_K.gguf', 'm-Q8_0.gguf', 'm-Q4_K_M.gguf', 'mmproj-f16.gguf'), 'o/n');
  assert.equal(gg.gguf, 'm-Q4_K_M.gguf');
  assert.deepEqual(
    gg.files.map((x) => x.path),
    ['m-Q4_K_M.gguf', 'README.md'],
  );
  assert.equal(selectFiles(f('q/m-q8_0.gguf'), 'o/n', 'm-q8_0.gguf').gguf, 'q/m-q8_0.gguf', 'a base name finds a file in a folder');
  assert.throws(() => selectFiles(f('a-IQ2_XS.gguf', 'a-IQ3_M.gguf'), 'o/n'), /several GGUF files .* choose one with --file: a-IQ2_XS\.gguf, a-IQ3_M\.gguf/);
  assert.throws(() => selectFiles(f('model.safetensors'), 'o/n'), /has safetensors weights but no config\.json/);
  assert.throws(
    () => selectFiles(f('pytorch_model.bin', 'config.json'), 'o/n'),
    /no model\.safetensors, safetensors index or GGUF file that qwen-ts can load \(files: pytorch_model\.bin, config\.json\)/,
  );
});

test('model cards: base_model as a string, a list or an inline list, and the relation', () => {
  assert.deepEqual(cardBaseModel('---\nbase_model: Qwen/Qwen2.5-7B\n---\n'), { baseModel: ['Qwen/Qwen2.5-7B'] });
  assert.deepEqual(cardBaseModel('---\nlicense: mit\nbase_model:\n  - "Qwen/A"\n  - Qwen/B\nbase_model_relation: merge\n---\ntext'), { baseModel: ['Qwen/A', 'Qwen/B'], relation: 'merge' });
  assert.deepEqual(cardBaseModel("---\r\nbase_model: ['Qwen/A', Qwen/B]\r\n---\r\n"), { baseModel: ['Qwen/A', 'Qwen/B'] });
  assert.deepEqual(cardBaseModel('# no front matter\nbase_model: x'), {});
});

test('cache roots follow HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME and MODELSCOPE_CACHE; HF_HUB_OFFLINE', () => {
  assert.equal(hfCacheRoot({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
  assert.equal(hfCacheRoot({ HF_HOME: '/h' }), path.join('/h', 'hub'));
  assert.equal(hfCacheRoot({ XDG_CACHE_HOME: '/x' }), path.join('/x', 'huggingface', 'hub'));
  assert.equal(hfCacheRoot({ HOME: '/u' }), path.join('/u', '.cache', 'huggingface', 'hub'));
  assert.equal(modelscopeCacheRoot({ HOME: '/u' }), path.join('/u', '.cache', 'modelscope', 'hub'));
  assert.equal(modelscopeCacheRoot({ MODELSCOPE_CACHE: '/m' }), '/m');
  assert.ok(isOffline({ HF_HUB_OFFLINE: '1' }) && isOffline({ HF_HUB_OFFLINE: 'true' }) && !isOffline({ HF_HUB_OFFLINE: '0' }) && !isOffline({}));
});

test('progress: plain lines when not a TTY; bars redrawn in place on a TTY', () => {
  const run = (isTTY: boolean) => {
    const out: string[] = [];
    const p = streamProgress({ isTTY, columns: 100, write: (s: string) => out.push(s) });
    p.start({
      label: 'Hugging Face o/n@main',
      commit: 'a'.repeat(40),
      files: [
        { path: 'config.json', size: 10, cached: true },
        { path: 'model.safetensors', size: 2048, cached: false },
      ],
    });
    p.fileDone('config.json', 'cached');
    p.file('model.safetensors', 1024);
    p.fileDone('model.safetensors', 'downloaded');
    p.end();
    return out.join('');
  };
  assert.equal(
    run(false),
    'pulling Hugging Face o/n@main (commit aaaaaaaaaaaa): 2 files, 1 to download (2.0 KB)\n' + '  cached          10 B  config.json\n  downloaded    2.0 KB  model.safetensors\n',
  );
  const tty = run(true);
  assert.match(tty, /\x1b\[2K/);
  assert.match(tty, /█+░* +\d.* total/);
});

test('pull checks --revision and --file given as options like those inside an id', async () => {
  const { pullModel } = await import('../../src/hub/pull.js');
  await assert.rejects(pullModel('Qwen/x', { revision: '../../etc', offline: true, cacheDir: '/nonexistent' }), /'\.\.\/\.\.\/etc' is not a usable revision/);
  await assert.rejects(pullModel('Qwen/x', { file: '../x.gguf', offline: true, cacheDir: '/nonexistent' }), /--file has the path "\.\.\/x\.gguf", which would leave/);
  await assert.rejects(pullModel({ repo: '../x' }, { offline: true, cacheDir: '/nonexistent' }), /'\.\.\/x' is not a model id/);
});
