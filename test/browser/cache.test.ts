// Hub files in the browser loader, run in Node against a local server laid out as the hub
// (<id>/resolve/<revision>/<file>) and a Cache API made for the test: the first load downloads
// into the cache with progress, the second reads the cached copy without touching the network,
// a model too large for the engine's memory is refused after its header and never downloaded.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { WasmBackend } from '../../src/backend/wasm.js';
import { loadModel } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';
import { cacheApiStore, hubUrl } from '../../src/browser/cache.js';
import { loadBrowserModel } from '../../src/browser/load.js';
import type { LoadProgress, WireLoadOptions } from '../../src/browser/protocol.js';
import { fixtureDir } from '../helpers.js';

const FILE = path.join(fixtureDir('models/qwen3-tiny-tied'), 'model-q4_k_m.gguf');
const TOKENS = [1, 17, 200, 42, 5];
const log: { range: boolean; url: string }[] = [];
let server: http.Server;
let base = '';

before(async () => {
  server = http.createServer((req, res) => {
    const url = req.url!;
    if (url !== '/Org/tiny/resolve/main/model-q4_k_m.gguf') return void res.writeHead(404).end();
    const size = fs.statSync(FILE).size;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    log.push({ range: Boolean(m), url });
    if (!m) {
      res.writeHead(200, { 'Content-Length': size });
      return void fs.createReadStream(FILE).pipe(res);
    }
    const a = Number(m[1]),
      b = Math.min(Number(m[2]), size - 1);
    res.writeHead(206, { 'Content-Length': b - a + 1, 'Content-Range': `bytes ${a}-${b}/${size}` });
    fs.createReadStream(FILE, { start: a, end: b }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

/** The Cache API's surface the loader uses: open(name) -> match(url) / put(url, response). */
class FakeCaches {
  readonly entries = new Map<string, Uint8Array<ArrayBuffer>>();
  async open(_name: string) {
    const entries = this.entries;
    return {
      async match(url: string) {
        const b = entries.get(url);
        return b ? new Response(b) : undefined;
      },
      async put(url: string, r: Response) {
        entries.set(url, new Uint8Array(await r.arrayBuffer())); // a stream that errors stores nothing
      },
    };
  }
}

function logits(m: CausalLM): Float32Array {
  return m
    .forward(
      TOKENS.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
      [m.newCache(32)],
    )
    .slice();
}

test('a hub file: downloaded into the cache with progress, then loaded from it; a second load never touches the network', async () => {
  const caches = new FakeCaches();
  const store = cacheApiStore(caches as unknown as CacheStorage);
  const source = { kind: 'hub', id: 'Org/tiny', file: 'model-q4_k_m.gguf', revision: 'main' } as const;
  const size = fs.statSync(FILE).size;
  const seen: LoadProgress[] = [];
  log.length = 0;
  const first = await loadBrowserModel(source, { hubBaseUrl: base }, { threads: 1, store, onProgress: (p) => seen.push(p) });
  const url = hubUrl('Org/tiny', 'model-q4_k_m.gguf', 'main', base);
  assert.equal(caches.entries.get(url)?.length, size);
  assert.equal(log.filter((l) => !l.range).length, 1, 'one full download');
  const dl = seen.filter((p) => p.phase === 'download');
  assert.ok(dl.length > 0 && dl.every((p, i) => p.total === size && p.file === url && (i === 0 || p.done >= dl[i - 1]!.done)));
  assert.equal(dl.at(-1)!.done, size);
  const ld = seen.filter((p) => p.phase === 'load');
  assert.equal(ld.at(-1)!.done, ld.at(-1)!.total);
  const ref = loadModel(FILE, { backend: new WasmBackend({ threads: 1 }), onNote: () => {} });
  assert.deepEqual(logits(first.model), logits(ref));

  log.length = 0;
  const again = await loadBrowserModel(source, { hubBaseUrl: base }, { threads: 1, store });
  assert.equal(log.length, 0, 'the cached copy is read, not the network');
  assert.deepEqual(logits(again.model), logits(ref));
});

test('a model too large for the engine memory is refused after its header, before any download', async () => {
  const caches = new FakeCaches();
  log.length = 0;
  await assert.rejects(
    loadBrowserModel(
      { kind: 'hub', id: 'Org/tiny', file: 'model-q4_k_m.gguf', revision: 'main' },
      { hubBaseUrl: base, memoryLimit: 64 << 20 },
      { threads: 1, store: cacheApiStore(caches as unknown as CacheStorage) },
    ),
    /model-q4_k_m\.gguf: this model needs about 0\.\d\d GiB of WebAssembly memory \(weights 0\.00 GiB, KV cache for \d+ tokens 0\.\d\d GiB\), more than the 0\.06 GiB the browser engine can use/,
  );
  assert.ok(
    log.every((l) => l.range),
    'only Range requests for the header',
  );
  assert.equal(caches.entries.size, 0);
});

test('hub ids, files and revisions are checked before any request', () => {
  assert.equal(hubUrl('Qwen/Qwen3-0.6B-GGUF', 'Qwen3-0.6B-Q8_0.gguf'), 'https://huggingface.co/Qwen/Qwen3-0.6B-GGUF/resolve/main/Qwen3-0.6B-Q8_0.gguf');
  assert.equal(hubUrl('a/b', 'sub/x y.gguf', 'refs/pr/1', 'http://h/'), 'http://h/a/b/resolve/refs%2Fpr%2F1/sub/x%20y.gguf');
  assert.throws(() => hubUrl('no-slash', 'x.gguf'), /hub id "no-slash" is not of the form owner\/name/);
  assert.throws(() => hubUrl('a/..', 'x.gguf'), /is not of the form owner\/name/);
  assert.throws(() => hubUrl('a/b', '../x.gguf'), /hub file "\.\.\/x\.gguf" is not a file path/);
});

test('load options: a thread count, context, memory limit, backend or cache out of range is refused naming it, before any request', async () => {
  log.length = 0;
  const src = { kind: 'hub', id: 'Org/tiny', file: 'model-q4_k_m.gguf', revision: 'main' } as const;
  const bad: [WireLoadOptions, RegExp][] = [
    [{ threads: 0 }, /load option threads must be a positive integer, got 0/],
    [{ threads: Number.NaN }, /load option threads must be a positive integer, got NaN/],
    [{ ctxSize: 1.5 }, /load option ctxSize must be a positive integer, got 1\.5/],
    [{ memoryLimit: -1 }, /load option memoryLimit must be a positive integer, got -1/],
    [{ backend: 'webgpu' as 'wasm' }, /load option backend must be 'wasm' or 'wasm-simd', got 'webgpu'/],
    [{ cache: 'disk' as 'none' }, /load option cache must be 'cache', 'opfs' or 'none', got 'disk'/],
  ];
  for (const [opts, re] of bad) await assert.rejects(loadBrowserModel(src, { hubBaseUrl: base, ...opts }, { threads: 1 }), re);
  assert.equal(log.length, 0);
});
