// qwen-ts web's file server (no browser): Range answers as RFC 9110 words them (206 + Content-Range,
// 416, If-Range, ETag / 304), the isolation headers on every answer and none with isolation off,
// nothing served outside the model's files and the build's browser files, and the CLI's errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import { createWebServer, modelFilesOf, rewriteImports } from '../../src/web/server.js';
import { parseRange } from '../../src/web/static.js';
import { resolveWebModel } from '../../src/cli/web.js';
import { fixtureDir, listen as listenFree, tmpDir } from '../helpers.js';
import { parsePort } from '../../src/cli/listen.js';

const GGUF = path.join(fixtureDir('models/qwen2-tiny-tied'), 'model-f32.gguf');
const bytes = fs.readFileSync(GGUF);
let servers: Server[] = [];
let iso: string, plain: string;

function listen(s: Server): Promise<string> {
  servers.push(s);
  return listenFree(s);
}

before(async () => {
  const m = resolveWebModel(GGUF, undefined);
  iso = await listen(createWebServer({ config: m.config, modelFiles: m.files }));
  plain = await listen(createWebServer({ config: m.config, modelFiles: m.files, isolation: false }));
});
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  servers = [];
});

test('parseRange: forms of bytes= ranges', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-1000', 100), { start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=50-1000', 100), { start: 50, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=9-3', 100), undefined);
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  assert.equal(parseRange('items=0-1', 100), undefined);
  assert.equal(parseRange(undefined, 100), undefined);
});

test('rewriteImports: the vendor names in import forms, nothing else', () => {
  const v = new Map([['@huggingface/jinja', { url: '/vendor/@huggingface/jinja/index.js' }]]);
  const js = `import { Template } from '@huggingface/jinja';\nimport "@huggingface/jinja";\nconst m = await import( '@huggingface/jinja' );\nexport { x } from "@huggingface/jinja";\nconst s = '@huggingface/jinja';\nimport { y } from '@huggingface/jinja-extra';`;
  assert.equal(
    rewriteImports(js, v),
    `import { Template } from '/vendor/@huggingface/jinja/index.js';\nimport "/vendor/@huggingface/jinja/index.js";\nconst m = await import( '/vendor/@huggingface/jinja/index.js' );\nexport { x } from "/vendor/@huggingface/jinja/index.js";\nconst s = '@huggingface/jinja';\nimport { y } from '@huggingface/jinja-extra';`,
  );
});

test('the page and the model file: isolation headers, Range, ETag', async () => {
  const page = await fetch(`${iso}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
  assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
  const html = await page.text();
  assert.match(html, /aria-label="Message"/);
  assert.match(html, /"url":"\/model\/model-f32.gguf"/);

  const url = `${iso}/model/model-f32.gguf`;
  const whole = await fetch(url);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get('accept-ranges'), 'bytes');
  assert.equal(whole.headers.get('cross-origin-resource-policy'), 'same-origin');
  assert.equal(Number(whole.headers.get('content-length')), bytes.length);
  assert.ok(Buffer.from(await whole.arrayBuffer()).equals(bytes));
  const etag = whole.headers.get('etag')!;
  assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);

  const part = await fetch(url, { headers: { Range: 'bytes=100-199' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 100-199/${bytes.length}`);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200)));
  const tail = await fetch(url, { headers: { Range: 'bytes=-16' } });
  assert.equal(tail.status, 206);
  assert.ok(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 16)));

  const past = await fetch(url, { headers: { Range: `bytes=${bytes.length}-` } });
  assert.equal(past.status, 416);
  assert.equal(past.headers.get('content-range'), `bytes */${bytes.length}`);
  await past.arrayBuffer();

  const same = await fetch(url, { headers: { 'If-None-Match': etag } });
  assert.equal(same.status, 304);
  // If-Range with another validator: the file changed, so the whole of it
  const stale = await fetch(url, { headers: { Range: 'bytes=0-3', 'If-Range': '"0-0"' } });
  assert.equal(stale.status, 200);
  await stale.arrayBuffer();
  const fresh = await fetch(url, { headers: { Range: 'bytes=0-3', 'If-Range': etag } });
  assert.equal(fresh.status, 206);
  assert.equal(Buffer.from(await fresh.arrayBuffer()).toString('latin1'), 'GGUF');

  const head = await fetch(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get('content-length')), bytes.length);
});

test('--no-isolation: no COOP / COEP / CORP headers', async () => {
  for (const p of ['/', '/model/model-f32.gguf', '/dist/src/web/app.js']) {
    const r = await fetch(plain + p);
    assert.equal(r.status, 200, p);
    await r.arrayBuffer();
    for (const h of ['cross-origin-opener-policy', 'cross-origin-embedder-policy', 'cross-origin-resource-policy']) assert.equal(r.headers.get(h), null, `${p} ${h}`);
  }
});

test('the browser build is served with its types; nothing outside it, and no other model file', async () => {
  const js = await fetch(`${iso}/dist/src/web/app.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type')!, /^text\/javascript/);
  assert.match(await js.text(), /BrowserEngine/);
  const wasm = await fetch(`${iso}/dist/src/kernels/kernels-simd.wasm`, { method: 'HEAD' });
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
  const jinja = await fetch(`${iso}/vendor/@huggingface/jinja/index.js`, { method: 'HEAD' });
  assert.equal(jinja.status, 200);
  // a module importing the dependency gets its URL here (Web Workers have no import maps)
  const tmpl = await fetch(`${iso}/dist/src/tokenizer/chat_template.js`);
  const src = await tmpl.text();
  assert.match(src, /from '\/vendor\/@huggingface\/jinja\/index\.js'/);
  assert.doesNotMatch(src, /from '@huggingface\/jinja'/);
  const again = await fetch(`${iso}/dist/src/tokenizer/chat_template.js`, { headers: { 'If-None-Match': tmpl.headers.get('etag')! } });
  assert.equal(again.status, 304);
  for (const p of [
    '/dist/src/web/server.d.ts',
    '/dist/src/%2e%2e/%2e%2e/package.json',
    '/dist/src/..%2f..%2fpackage.json',
    '/dist/src/web/%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json',
    '/model/config.json',
    '/model/..%2fconfig.json',
    '/vendor/@huggingface/jinja/../package.json',
    '/etc/passwd',
  ]) {
    const r = await fetch(iso + p);
    assert.equal(r.status, 404, p);
    await r.arrayBuffer();
  }
  const post = await fetch(`${iso}/`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  await post.arrayBuffer();
});

test('model files: a folder with one GGUF is that GGUF; a split set is served whole; a hub id with or without its file; a folder of neither kind refused', () => {
  const tied = modelFilesOf(fixtureDir('models/qwen2-tiny-tied'));
  assert.equal(tied.entry, 'model-f32.gguf');
  assert.ok(tied.files.has('config.json'));
  const split = modelFilesOf(path.join(fixtureDir('models/qwen2-tiny-split'), 'model-f32-00002-of-00003.gguf'));
  assert.equal(split.entry, 'model-f32-00002-of-00003.gguf');
  assert.deepEqual([...split.files.keys()].sort(), ['model-f32-00001-of-00003.gguf', 'model-f32-00002-of-00003.gguf', 'model-f32-00003-of-00003.gguf']);
  // a vision model's folder: the model GGUF beside its projector is that GGUF
  const vl = tmpDir();
  fs.copyFileSync(GGUF, path.join(vl, 'model-f32.gguf'));
  fs.copyFileSync(GGUF, path.join(vl, 'mmproj-model-f16.gguf'));
  assert.equal(modelFilesOf(vl).entry, 'model-f32.gguf');
  assert.deepEqual(resolveWebModel(vl, undefined).config.source, { url: '/model/model-f32.gguf' });
  assert.throws(() => resolveWebModel(path.join(fixtureDir('models/qwen2-tiny-split'), 'model-f32-00002-of-00003.gguf'), undefined), /a split GGUF \(3 files\).*merge the set first/);
  const empty = tmpDir();
  fs.writeFileSync(path.join(empty, 'notes.txt'), '');
  assert.throws(() => resolveWebModel(empty, undefined), /neither a GGUF file nor a Hugging Face folder/);
  fs.writeFileSync(path.join(empty, 'config.json'), '{}');
  assert.deepEqual(resolveWebModel(empty, undefined).config.source, { url: '/model/' });
  assert.deepEqual(resolveWebModel('Qwen/Qwen2.5-0.5B-Instruct', 'http://127.0.0.1:9').config.source, { hub: 'Qwen/Qwen2.5-0.5B-Instruct', revision: undefined });
  assert.throws(() => resolveWebModel('Qwen/Qwen2.5-0.5B-Instruct-GGUF/a.gguf', 'ftp://x'), /--hub-url must be an http\(s\) URL/);
  assert.throws(() => resolveWebModel('./no/such/model.gguf', undefined), /no such model folder or file/);
  const hub = resolveWebModel('Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q8_0.gguf@main', 'http://127.0.0.1:9/');
  assert.deepEqual(hub.config, {
    name: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q8_0.gguf',
    source: { hub: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF', file: 'qwen2.5-0.5b-instruct-q8_0.gguf', revision: 'main' },
    hubBaseUrl: 'http://127.0.0.1:9',
  });
  assert.equal(hub.files.size, 0);
});

test('--port (serve and web): 0..65535, anything else refused naming the option and the value', () => {
  assert.equal(parsePort('8080'), 8080);
  assert.equal(parsePort('0'), 0);
  for (const bad of ['65536', '-1', '80.5', 'http', '', ' ']) assert.throws(() => parsePort(bad), new RegExp(`--port must be 0\\.\\.65535, got '${bad}'`));
});
