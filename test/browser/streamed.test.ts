// The browser's model loader, run in Node: a fixture GGUF served over HTTP with Range support
// (node:http, here in the test only) or read from a Blob, header first, tensors streamed into the
// WebAssembly backend's memory. Its logits and greedy tokens must equal Node's file loader's,
// bit for bit (same kernels, same bytes), and every byte is fetched about once.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { WasmBackend } from '../../src/backend/wasm.js';
import { loadModel } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';
import { generate } from '../../src/generate/generate.js';
import { openBlob, openUrl, readGgufHeader } from '../../src/browser/remote.js';
import { loadStreamed } from '../../src/browser/streamed.js';
import { fixtureDir } from '../helpers.js';
import { loadBrowserModel } from '../../src/browser/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { checkVocab, ggufConfig } from '../../src/models/load_source.js';

const FILES = [
  ['qwen3-tiny-tied', 'model-q4_k_m.gguf'],
  ['qwen35-tiny', 'model-q8_0.gguf'], // its attn_q is split into query and gate rows at load: a restart
  ['qwen2moe-tiny', 'model-q8_0.gguf'],
];
const TOKENS = [1, 17, 200, 42, 5, 99, 7, 250]; // below every fixture's vocabulary size (275)

let server: http.Server;
let base = '';
const served = { requests: 0, bytes: 0, ranges: true };

before(async () => {
  server = http.createServer((req, res) => {
    const file = path.join(fixtureDir('models'), decodeURIComponent(new URL(req.url!, 'http://x').pathname));
    if (!fs.existsSync(file)) return void res.writeHead(404).end();
    const size = fs.statSync(file).size;
    served.requests++;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || !served.ranges) {
      served.bytes += size;
      res.writeHead(200, { 'Content-Length': size });
      return void fs.createReadStream(file).pipe(res);
    }
    const a = Number(m[1]),
      b = Math.min(Number(m[2]), size - 1);
    served.bytes += b - a + 1;
    res.writeHead(206, { 'Content-Length': b - a + 1, 'Content-Range': `bytes ${a}-${b}/${size}`, 'Accept-Ranges': 'bytes' });
    fs.createReadStream(file, { start: a, end: b }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

function logits(m: CausalLM): Float32Array {
  return m
    .forward(
      TOKENS.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
      [m.newCache(64)],
    )
    .slice();
}

async function greedy(m: CausalLM): Promise<number[]> {
  const out: number[] = [];
  for await (const s of generate(m, TOKENS, { max_tokens: 12, temperature: 0 })) out.push(s.token);
  return out;
}

for (const [dir, file] of FILES) {
  test(`${dir}/${file} over HTTP Range requests: logits bit-identical to Node's loader, greedy tokens equal, bytes fetched bounded`, async () => {
    const local = path.join(fixtureDir(`models/${dir}`), file);
    const ref = loadModel(local, { backend: new WasmBackend({ threads: 1 }), onNote: () => {} });
    const want = logits(ref),
      wantTokens = await greedy(ref);
    served.requests = served.bytes = 0;
    const src = await openUrl(`${base}/${dir}/${file}`);
    assert.equal(src.size, fs.statSync(local).size);
    const g = await readGgufHeader(src);
    const seen: number[] = [];
    // eagerBytes 0: only vectors are fetched before the loader runs, every matrix is streamed into place
    const { model, attempts } = await loadStreamed(g, src, () => new WasmBackend({ threads: 1 }), { eagerBytes: 0, onProgress: (d, t) => seen.push(d / t), onNote: () => {} });
    assert.deepEqual(logits(model), want);
    assert.deepEqual(await greedy(model), wantTokens);
    assert.equal(seen.at(-1), 1);
    assert.ok(
      seen.every((v, i) => i === 0 || v >= seen[i - 1]!),
      'progress never goes back',
    );
    if (dir === 'qwen35-tiny') assert.ok(attempts > 1, 'the split q projection restarts the load once with it fetched');
    // the header's first piece (in these tiny files, the whole file), the vectors (with the small
    // matrices between them) and the weights streamed into place: at most the file and its tensor
    // data twice (in a real model, the weights once); a restarted load fetches only what it lacked
    const data = src.size - g.dataOffset;
    assert.ok(served.bytes <= src.size + 2 * data, `fetched ${served.bytes} bytes of a ${src.size}-byte file (${data} bytes of tensors)`);
    assert.ok(served.requests < 40, `${served.requests} requests`);
  });
}

test("a Hugging Face folder by URL (config.json, tokenizer files, model.safetensors by Range requests): logits and tokenizer = Node's", async () => {
  for (const dir of ['qwen2-tiny-tied', 'qwen3-tiny-tied']) {
    const local = fixtureDir(`models/${dir}`);
    const ref = loadModel(local, { backend: new WasmBackend({ threads: 1 }), onNote: () => {} });
    const got = await loadBrowserModel({ kind: 'url', url: `${base}/${dir}/` }, {}, { threads: 1 });
    assert.equal(got.config.model_type, ref.config.model_type);
    assert.deepEqual(logits(got.model), logits(ref));
    const text = 'Hello, world! <|im_start|>user\n你好';
    assert.deepEqual(got.tokenizer.encode(text), loadTokenizer(local).encode(text));
  }
  await assert.rejects(loadBrowserModel({ kind: 'url', url: `${base}/qwen2-tiny-split/` }, {}, { threads: 1 }), /qwen2-tiny-split\/config\.json: not found; a Hugging Face model folder has one/);
});

test('a Blob (a File the user picked) loads the same model as the file, on 1 thread or 2', async () => {
  const local = path.join(fixtureDir('models/qwen3-tiny-tied'), 'model-q4_k_m.gguf');
  const ref = loadModel(local, { backend: new WasmBackend({ threads: 1 }), onNote: () => {} });
  const src = openBlob(new Blob([fs.readFileSync(local)]), 'model-q4_k_m.gguf');
  const want = logits(ref);
  for (const make of [() => new WasmBackend({ threads: 1 }), () => new WasmBackend({ threads: 2 })]) {
    const { model } = await loadStreamed(await readGgufHeader(src), src, make, { onNote: () => {} });
    assert.deepEqual(logits(model), want);
  }
});

test('errors: a server without Range support, a missing file, a file that is not GGUF, a truncated file', async () => {
  served.ranges = false;
  try {
    await assert.rejects(openUrl(`${base}/qwen3-tiny-tied/model-q4_k_m.gguf`), /ignored a Range request \(status 200, not 206\).*Accept-Ranges/);
  } finally {
    served.ranges = true;
  }
  await assert.rejects(openUrl(`${base}/nope.gguf`), /nope\.gguf: not found \(HTTP 404\)/);
  const json = await openUrl(`${base}/qwen3-tiny-tied/config.json`);
  await assert.rejects(readGgufHeader(json), /config\.json: not a GGUF file \(bad magic/);
  const bytes = fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-tied'), 'model-q4_k_m.gguf'));
  const cut = openBlob(new Blob([bytes.subarray(0, bytes.length - 1000)]), 'cut.gguf');
  await assert.rejects(readGgufHeader(cut), /cut\.gguf: tensor '.*' .*lies past the end of the file/);
});

test('a GGUF header without token_embd.weight is refused naming the file and the tensor (ggufConfig, shared with Node)', async () => {
  const bytes = fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-tied'), 'model-q4_k_m.gguf'));
  const g = await readGgufHeader(openBlob(new Blob([bytes]), 'no-embd.gguf'));
  const tensors = new Map([...g.tensors].filter(([n]) => n !== 'token_embd.weight'));
  assert.throws(() => ggufConfig({ ...g, tensors }), /no-embd\.gguf: tensor 'token_embd\.weight' is missing/);
});

test('a tokenizer with more tokens than the model has embedding rows is refused (checkVocab: the page and the server)', async () => {
  const bytes = fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-tied'), 'model-q4_k_m.gguf'));
  const config = ggufConfig(await readGgufHeader(openBlob(new Blob([bytes]), 'm.gguf')));
  checkVocab('m.gguf', { vocabSize: config.vocab_size }, config);
  assert.throws(
    () => checkVocab('m.gguf', { vocabSize: config.vocab_size + 1 }, config),
    new RegExp(`m\\.gguf: the tokenizer has ${config.vocab_size + 1} tokens but the model only ${config.vocab_size} embedding rows`),
  );
});

test('a shard of a split GGUF is refused by name (the browser reads one file), not with a missing tensor', async () => {
  const shard = path.join(fixtureDir('models/qwen2-tiny-split'), 'model-f32-00001-of-00003.gguf');
  await assert.rejects(
    loadBrowserModel({ kind: 'blob', blob: new Blob([fs.readFileSync(shard)]), name: 'model-f32-00001-of-00003.gguf' }, {}, { threads: 1 }),
    /model-f32-00001-of-00003\.gguf: one shard of a split GGUF \(3 files\).*merge the set first/,
  );
});
