// Bad input and bad networks: unknown and gated models, file lists that try to leave the cache,
// wrong bytes, connections cut or stalled mid-file (resumed with Range), 503s, a full disk,
// concurrent pulls and abandoned locks. Each ends in a clear message or a complete, verified model;
// never in a partial file taken for a whole one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pullModel } from '../../src/hub/pull.js';
import { findCached } from '../../src/hub/cache.js';
import { DEFAULT_IO, type BlobIo } from '../../src/hub/download.js';
import { QwenError } from '../../src/errors.js';
import { startFixtureHub, TINY_MODEL } from './fixture_hub.js';
import { freshCache, hubOpts, logitsOf, tree } from './util.js';

const hub = await startFixtureHub();
after(() => hub.close());
const tiny = hub.repos.get('Qwen/tiny-qwen2')!;
const st = tiny.files.find((f) => f.path === 'model.safetensors')!;
const blobDir = (cache: string) => path.join(cache, 'models--Qwen--tiny-qwen2', 'blobs');
const cdnGets = (sha: string) => hub.log.filter((e) => e.url.startsWith(`/cdn/${sha}`));

function rejects(p: Promise<unknown>, re: RegExp) {
  return assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof QwenError, `expected a QwenError, got ${e.stack}`);
    assert.match(e.message, re);
    return true;
  });
}

test('unknown model: 401 without a token (as HF answers), 404 with one', async () => {
  await rejects(
    pullModel('Qwen/nope', hubOpts(hub, freshCache())),
    /model 'Qwen\/nope' was not found on Hugging Face \(http:\/\/127\.0\.0\.1:\d+\); if it is private, set HF_TOKEN \(HTTP 401: Repository not found\)/,
  );
  await rejects(pullModel('Qwen/nope', hubOpts(hub, freshCache(), { token: 'x' })), /model 'Qwen\/nope' was not found on Hugging Face .*\(HTTP 404/);
  await rejects(pullModel('not an id', hubOpts(hub, freshCache())), /'not an id' is not a model id: expected owner\/name\[@revision\]/);
});

test('gated model: without a token, with a token lacking access, with the right token', async () => {
  const cache = freshCache();
  await rejects(pullModel('Qwen/gated', hubOpts(hub, cache)), /'Qwen\/gated' is a gated model: accept its conditions at http:\/\/127\.0\.0\.1:\d+\/Qwen\/gated, then set HF_TOKEN .*\(HTTP 401/);
  await rejects(pullModel('Qwen/gated', hubOpts(hub, cache, { token: 'wrong' })), /the token in HF_TOKEN has no access to the gated model 'Qwen\/gated'.*\(HTTP 403/);
  const r = await pullModel('Qwen/gated', hubOpts(hub, cache, { env: { HF_TOKEN: 'hf_secret', HF_HOME: cache } }));
  assert.ok(fs.existsSync(path.join(r.path, 'model.safetensors')));
});

test('file lists with ".." or absolute paths are refused before anything is written', async () => {
  for (const [id, bad] of [
    ['Qwen/evil-dotdot', '"../../../evil.json"'],
    ['Qwen/evil-abs', '"/etc/evil.json"'],
  ] as const) {
    const cache = freshCache();
    await rejects(pullModel(id, hubOpts(hub, cache)), new RegExp(`the hub's file list has the path ${bad.replace(/[./]/g, '\\$&')}, which would leave the model's cache folder`));
    assert.deepEqual(fs.readdirSync(cache), []);
  }
});

test('wrong bytes from the server: discarded, nothing linked, and a later good pull works', async () => {
  const cache = freshCache();
  hub.faults.corrupt.add('model.safetensors');
  try {
    await rejects(
      pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache)),
      new RegExp(`model.safetensors: the downloaded bytes do not match the hub's sha256 \\(expected ${st.sha256}, got [0-9a-f]{64}\\); the download was discarded`),
    );
  } finally {
    hub.faults.corrupt.clear();
  }
  assert.ok(!tree(blobDir(cache)).some((f) => f.startsWith(st.sha256)), 'no blob and no .incomplete');
  assert.ok(!fs.existsSync(path.join(cache, 'models--Qwen--tiny-qwen2', 'snapshots', tiny.commit, 'model.safetensors')));
  assert.ok(!fs.existsSync(path.join(cache, 'models--Qwen--tiny-qwen2', 'refs', 'main')));
  assert.equal(findCached(cache, 'Qwen/tiny-qwen2', 'main'), undefined);
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache));
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('a connection cut halfway is resumed with a Range request', async () => {
  const cache = freshCache();
  const before = cdnGets(st.sha256).length;
  hub.faults.drop.set('model.safetensors', 2);
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache));
  const gets = cdnGets(st.sha256).slice(before);
  assert.equal(gets.length, 3);
  assert.equal(gets[0]!.range, undefined);
  assert.match(gets[1]!.range!, /^bytes=\d+-$/);
  assert.ok(Number(/\d+/.exec(gets[2]!.range!)![0]) >= Number(/\d+/.exec(gets[1]!.range!)![0]), 'a resume never goes back');
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('a connection that keeps dropping: a clear error, the partial kept as .incomplete only, resumed by the next pull', async () => {
  const cache = freshCache();
  hub.faults.drop.set('model.safetensors', 100);
  try {
    await rejects(
      pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { net: { retries: 2, retryBaseMs: 1, retryMaxMs: 2, timeoutMs: 5000, idleMs: 2000 } })),
      /could not download Qwen\/tiny-qwen2\/model\.safetensors: the connection to 127\.0\.0\.1:\d+ (was cut|closed after).* \(gave up after 3 attempts\)\. Run the same command again to resume from the .* kept in .*\.incomplete\.$/,
    );
  } finally {
    hub.faults.drop.clear();
  }
  const blobs = fs.readdirSync(blobDir(cache));
  assert.ok(blobs.includes(`${st.sha256}.incomplete`) && !blobs.includes(st.sha256));
  assert.equal(findCached(cache, 'Qwen/tiny-qwen2', 'main'), undefined, 'an incomplete snapshot is never loadable');
  const before = cdnGets(st.sha256).length;
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache));
  assert.match(cdnGets(st.sha256)[before]!.range!, /^bytes=\d+-$/);
  assert.ok(r.downloaded < st.data.length, 'only the rest was fetched');
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('a stalled body times out and resumes; 503s are retried (Retry-After honoured)', async () => {
  const cache = freshCache();
  hub.faults.stall.set('model.safetensors', 1);
  hub.faults.fail503.set('config.json', 2);
  const t0 = Date.now();
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { net: { retries: 3, retryBaseMs: 5, retryMaxMs: 20, timeoutMs: 5000, idleMs: 300 } }));
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(hub.faults.fail503.get('config.json'), 0);
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('a full disk (ENOSPC) gives a clear message and keeps the partial for a resume; too little free space is refused up front', async () => {
  const cache = freshCache();
  let written = 0;
  const full: BlobIo = {
    async write(fh, data, pos) {
      if (written > 50_000) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      written += data.length;
      return DEFAULT_IO.write(fh, data, pos);
    },
  };
  await rejects(
    pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { io: full })),
    /no space left on the disk holding .*blobs while writing Qwen\/tiny-qwen2\/model\.safetensors \(.* of 187\.7 KB written\)\. Free some space and pull again/,
  );
  assert.ok(fs.existsSync(path.join(blobDir(cache), `${st.sha256}.incomplete`)));
  assert.ok(!fs.existsSync(path.join(blobDir(cache), st.sha256)));
  await rejects(pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { freeBytes: async () => 1000 })), /needs .* more in .*, but only 1000 B is free on that disk; free some space or set HF_HOME/);
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache));
  assert.deepEqual(logitsOf(r.path), logitsOf(TINY_MODEL));
});

test('two pulls of one model at once: both succeed, each blob downloaded once, nothing left over', async () => {
  const cache = freshCache();
  const before = cdnGets(st.sha256).length;
  const [a, b] = await Promise.all([pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache)), pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache))]);
  assert.equal(a.path, b.path);
  assert.equal(cdnGets(st.sha256).length - before, 1);
  const all = tree(cache);
  assert.ok(!all.some((f) => /\.(incomplete|tmp|lock)$/.test(f)), all.join('\n'));
  assert.deepEqual(logitsOf(a.path), logitsOf(TINY_MODEL));
});

test('locks: a dead holder or a stale lock is broken; a live one is waited for', async () => {
  const cache = freshCache();
  const lockDir = path.join(cache, '.locks', 'models--Qwen--tiny-qwen2');
  fs.mkdirSync(lockDir, { recursive: true });
  const lock = (f: { sha256: string }) => path.join(lockDir, `${f.sha256}.lock`);
  const cfg = tiny.files.find((f) => f.path === 'config.json')!;
  fs.writeFileSync(lock(st), JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname() })); // no such process
  fs.writeFileSync(lock({ sha256: cfg.gitSha1 }), JSON.stringify({ pid: 1, host: 'elsewhere' }));
  const old = new Date(Date.now() - 3_600_000);
  fs.utimesSync(lock({ sha256: cfg.gitSha1 }), old, old); // another host's, untouched for an hour
  const r = await pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache, { lockStaleMs: 10_000 }));
  assert.ok(fs.existsSync(path.join(r.path, 'model.safetensors')));

  const c2 = freshCache();
  const l2 = path.join(c2, '.locks', 'models--Qwen--tiny-qwen2', `${st.sha256}.lock`);
  fs.mkdirSync(path.dirname(l2), { recursive: true });
  fs.writeFileSync(l2, JSON.stringify({ pid: process.pid, host: os.hostname() })); // held by a live process
  const notes: string[] = [];
  const progress = { start() {}, file() {}, fileDone() {}, end() {}, note: (m: string) => void notes.push(m) };
  const t0 = Date.now();
  setTimeout(() => fs.rmSync(l2), 400);
  await pullModel('Qwen/tiny-qwen2', hubOpts(hub, c2, { lockStaleMs: 20_000, progress }));
  assert.ok(Date.now() - t0 >= 350);
  assert.deepEqual(notes, ['  waiting for another pull of model.safetensors to finish...']);
});

test('an X-Linked-Etag that contradicts the file list is refused before a byte is written', async () => {
  const cache = freshCache();
  hub.faults.wrongEtag.add('model.safetensors');
  try {
    await rejects(pullModel('Qwen/tiny-qwen2', hubOpts(hub, cache)), new RegExp(`the hub's ETag for model\\.safetensors is b{64}, but its file list says ${st.sha256}`));
  } finally {
    hub.faults.wrongEtag.clear();
  }
  assert.ok(!fs.readdirSync(blobDir(cache)).some((b) => b.startsWith(st.sha256)));
});

/** pullModel in a child process (compiled, or through tsx in development) against the fixture hub. */
function pullInChild(cache: string): Promise<{ code: number | null; out: string; err: string }> {
  const js = fileURLToPath(new URL('../../src/hub/pull.js', import.meta.url));
  const mod = fs.existsSync(js) ? js : js.replace(/\.js$/, '.ts');
  const script = `const { pullModel } = await import(${JSON.stringify(new URL(`file://${mod}`).href)});
    const how = {};
    const progress = { start() {}, file() {}, end() {}, note() {}, fileDone(p, h) { how[p] = h; } };
    const r = await pullModel('Qwen/tiny-qwen2', { ...JSON.parse(process.env.PULL_OPTS), progress });
    process.stdout.write(JSON.stringify({ path: r.path, how }));`;
  const opts = { cacheDir: cache, endpoint: hub.url, env: { HF_HOME: cache }, net: { retries: 3, retryBaseMs: 5, retryMaxMs: 20, timeoutMs: 5000, idleMs: 5000 } };
  const child = spawn(process.execPath, [...(mod.endsWith('.ts') ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script], {
    env: { ...process.env, PULL_OPTS: JSON.stringify(opts) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '',
    err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => child.kill(), 30_000);
  return new Promise((ok) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      ok({ code, out, err });
    }),
  );
}

test('two processes pulling one model at once: each blob is downloaded once, both get the model', async () => {
  const cache = freshCache();
  const before = cdnGets(st.sha256).length;
  hub.faults.slowMs.set('model.safetensors', 800); // long enough for the other process to find the lock
  let a: Awaited<ReturnType<typeof pullInChild>>, b: Awaited<ReturnType<typeof pullInChild>>;
  try {
    [a, b] = await Promise.all([pullInChild(cache), pullInChild(cache)]);
  } finally {
    hub.faults.slowMs.clear();
  }
  assert.equal(a.code, 0, a.err);
  assert.equal(b.code, 0, b.err);
  const [ra, rb] = [a, b].map((r) => JSON.parse(r.out) as { path: string; how: Record<string, string> });
  assert.equal(ra!.path, rb!.path);
  assert.deepEqual([ra!.how['model.safetensors'], rb!.how['model.safetensors']].sort(), ['cached', 'downloaded']);
  assert.equal(cdnGets(st.sha256).length - before, 1);
  assert.ok(!tree(cache).some((f) => /\.(incomplete|tmp|lock)$/.test(f)));
  assert.deepEqual(logitsOf(ra!.path), logitsOf(TINY_MODEL));
});
