// `qwen-ts web` in a real browser (playwright-core driving Debian's chromium): the CLI serves a
// fixture model, the page loads it into the in-browser engine, and a greedy answer typed into the
// "Message" box equals what `qwen-ts run <model> "<prompt>" --temperature 0` prints on Node (its
// text), token for token (the page's data-tokens against Node's greedy ids for the same prompt).
// Cross-origin isolated, the engine runs on several threads; with --no-isolation on one, and the
// page shows a notice. Screenshots go to a folder under os.tmpdir() named in the test's output.
// Without /usr/bin/chromium the test is skipped with a note, unless QWEN_TS_REQUIRE_BROWSER=1.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { openChatModel, prepareChat } from '../../src/chat/engine.js';
import { openGguf } from '../../src/formats/gguf.js';
import { sendFile } from '../../src/web/static.js';
import { chatModelDir, ROOT, tmpDir } from '../helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const have = fs.existsSync(CHROMIUM);
if (!have && process.env.QWEN_TS_REQUIRE_BROWSER === '1') throw new Error(`${CHROMIUM} is missing, and QWEN_TS_REQUIRE_BROWSER=1`);
const skip = have ? false : `no browser at ${CHROMIUM} (apt-get install chromium)`;

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
// as a new user would type it: a fixture folder of the repository (it holds one GGUF, which the page loads)
const MODEL = path.join('test', 'fixtures', 'models', 'qwen2-tiny-tied');
const GGUF = path.join(MODEL, 'model-f32.gguf');
const PROMPT = 'Hello, world! 你好，世界。';
const MAX_TOKENS = 12;
const ARTIFACTS = tmpDir('qwen-ts-web-artifacts-');

let browser: Browser;
const servers: ChildProcess[] = [];
let expected: { content: string; reasoning: string; ids: number[] };

/** Start `qwen-ts web` on a free port; resolves with its URL once it listens. */
function startWeb(model: string, ...args: string[]): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'web', model, '--port', '0', '--no-access-log', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  servers.push(child);
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /at (http:\/\/\S+\/) /.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`qwen-ts web exited (${code}): ${err}`)));
  });
}

before(async () => {
  if (!have) return;
  // Node's answer: the CLI's text, and the same greedy generation's token ids through the library
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'run', GGUF, PROMPT, '--temperature', '0', '--max-tokens', String(MAX_TOKENS), '--json'], { cwd: ROOT });
  const r = JSON.parse(stdout) as { content: string; reasoning_content?: string };
  const cm = openChatModel(path.join(ROOT, GGUF), 'ref');
  const { ids: prompt } = prepareChat(cm, { messages: [{ role: 'user', content: PROMPT }], enable_thinking: true });
  const ids: number[] = [];
  for await (const s of cm.scheduler.submit(prompt, { temperature: 0, max_tokens: MAX_TOKENS, stop_tokens: cm.tokenizer.eosTokenIds, vocab_limit: cm.tokenizer.vocabSize })) ids.push(s.token);
  expected = { content: r.content, reasoning: r.reasoning_content ?? '', ids };
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
});

let hub: http.Server | undefined;
after(async () => {
  await browser?.close();
  for (const s of servers) s.kill();
  hub?.closeAllConnections();
  hub?.close();
});

/** Open the page, wait for the model, send the prompt at temperature 0; the reply's element. */
async function chat(page: Page, base: string): Promise<{ tokens: number[]; content: string; reasoning: string; threads: number }> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(base);
  await page.waitForFunction(() => document.body.dataset.state !== 'loading' && document.body.dataset.state !== undefined, null, { timeout: 30_000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  assert.equal(state, 'ready', `the page did not load the model: ${await page.textContent('#error')} ${errors.join('; ')}`);
  await page.fill('#temperature', '0');
  await page.fill('#max_tokens', String(MAX_TOKENS));
  await page.getByRole('textbox', { name: 'Message' }).fill(PROMPT);
  await page.getByRole('button', { name: 'Send' }).click();
  const reply = page.locator('[data-role="assistant"]').last();
  await reply.and(page.locator('[data-done]')).waitFor({ timeout: 30_000 });
  assert.equal(await reply.getAttribute('data-done'), 'true', (await reply.textContent()) ?? '');
  const tokens = ((await reply.getAttribute('data-tokens')) ?? '').split(',').filter(Boolean).map(Number);
  const content = (await reply.locator('.content').textContent()) ?? '';
  const reasoning = (await reply.locator('details.think').count()) ? ((await reply.locator('details.think').textContent()) ?? '').replace(/^Thinking/, '') : '';
  const threads = Number(await page.getAttribute('#threads', 'data-threads'));
  assert.deepEqual(errors, []);
  return { tokens, content, reasoning, threads };
}

// Markdown rendering turns newlines into <br>/<p>: compare text with whitespace runs folded
const fold = (s: string) => s.replace(/\s+/g, ' ').trim();

test('cross-origin isolated: the greedy answer equals qwen-ts run token for token, on several threads', { skip, timeout: 60_000 }, async (t) => {
  const base = await startWeb(MODEL);
  const page = await browser.newPage();
  const got = await chat(page, base);
  assert.deepEqual(got.tokens, expected.ids, 'token ids: the page vs Node');
  assert.equal(fold(got.content), fold(expected.content), 'answer text: the page vs qwen-ts run');
  assert.equal(fold(got.reasoning), fold(expected.reasoning));
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  assert.equal(got.threads, cores, 'one kernel thread per core');
  assert.ok(got.threads >= 2 || os.availableParallelism() < 2, `threads: ${got.threads}`);
  assert.equal(await page.isVisible('#notice'), false);
  const shot = path.join(ARTIFACTS, 'web-chat.png');
  await page.screenshot({ path: shot });
  t.diagnostic(`screenshot of the chat: ${shot}`);
  assert.ok(fs.statSync(shot).size > 1000);
  await page.close();
});

test('--no-isolation: one thread, a notice, and the same answer', { skip, timeout: 60_000 }, async (t) => {
  const base = await startWeb(MODEL, '--no-isolation');
  const page = await browser.newPage();
  const got = await chat(page, base);
  assert.equal(await page.evaluate(() => crossOriginIsolated), false);
  assert.equal(got.threads, 1);
  assert.ok(await page.isVisible('#notice'), 'the one-thread notice is shown');
  assert.match((await page.textContent('#notice')) ?? '', /thread/i);
  assert.deepEqual(got.tokens, expected.ids, 'token ids: the page (1 thread) vs Node');
  const shot = path.join(ARTIFACTS, 'web-one-thread.png');
  await page.screenshot({ path: shot });
  t.diagnostic(`screenshot with the one-thread notice: ${shot}`);
  await page.close();
});

test('a hub id: the page downloads the file from the hub (a local stand-in, --hub-url) and answers the same', { skip, timeout: 60_000 }, async () => {
  // the hub's resolve URL, with CORS as huggingface.co sends it (the page is another origin)
  const requests: string[] = [];
  hub = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const cors = {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': 'Range, If-Range, If-None-Match',
      'Access-Control-Expose-Headers': 'Content-Range, Content-Length, Accept-Ranges, ETag',
      'Cross-Origin-Resource-Policy': 'cross-origin',
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      return void res.end();
    }
    if (req.url?.split('?')[0] === '/test-owner/tiny-GGUF/resolve/main/model-f32.gguf') return sendFile(req, res, path.join(ROOT, GGUF), cors);
    res.writeHead(404, cors);
    res.end();
  });
  await new Promise<void>((r) => hub!.listen(0, '127.0.0.1', r));
  const hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  const base = await startWeb('test-owner/tiny-GGUF/model-f32.gguf', '--hub-url', hubUrl);
  const page = await browser.newPage();
  const got = await chat(page, base);
  assert.deepEqual(got.tokens, expected.ids, 'token ids: the page (hub download) vs Node');
  assert.ok(
    requests.some((r) => r.startsWith('GET /test-owner/tiny-GGUF/resolve/main/model-f32.gguf')),
    requests.join('\n'),
  );
  await page.close();
});

/**
 * The fixture with its last tensor (output_norm.weight, f32 [64]) claiming 2^30 elements: 4 GiB more
 * of weights, as a sparse file (the header is real, the missing data reads as zeros, no disk used).
 */
function tooLargeGguf(): string {
  const src = path.join(ROOT, GGUF);
  const g = openGguf(src);
  const last = [...g.tensorList].sort((a, b) => a.offset - b.offset).at(-1)!;
  const dataOffset = g.dataOffset;
  g.close();
  const buf = fs.readFileSync(src);
  const name = Buffer.from(last.name);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(name.length));
  const dims = buf.indexOf(Buffer.concat([len, name])) + 8 + name.length; // n_dims u32, then ne u64[n_dims]
  assert.equal(buf.readUInt32LE(dims), 1, `${last.name} is 1-D`);
  buf.writeBigUInt64LE(BigInt(2 ** 30), dims + 4);
  const out = path.join(ARTIFACTS, 'too-large.gguf');
  fs.writeFileSync(out, buf.subarray(0, dataOffset + last.offset));
  fs.truncateSync(out, dataOffset + last.offset + 4 * 2 ** 30);
  return out;
}

test('a model too large for the browser: a clear error on the page, and no Send', { skip, timeout: 60_000 }, async () => {
  const big = tooLargeGguf();
  const base = await startWeb(big);
  const page = await browser.newPage();
  await page.goto(base);
  await page.waitForFunction(() => document.body.dataset.state === 'error' || document.body.dataset.state === 'ready', null, { timeout: 30_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
  assert.ok(await page.isVisible('#error'));
  assert.match((await page.textContent('#error')) ?? '', /^Could not load too-large\.gguf: .*more than the [\d.]+ GiB the browser engine can use/);
  assert.equal(await page.isDisabled('#send'), true);
  await page.close();
  fs.rmSync(big);
});

test('a Hugging Face folder (safetensors + tokenizer.json + chat template): the same greedy tokens as Node', { skip, timeout: 60_000 }, async () => {
  const dir = chatModelDir(); // tiny Qwen3 weights with the real vocabulary, tokenizer and chat template
  const cm = openChatModel(dir, 'ref');
  const { ids: prompt } = prepareChat(cm, { messages: [{ role: 'user', content: PROMPT }], enable_thinking: true });
  const ids: number[] = [];
  for await (const s of cm.scheduler.submit(prompt, { temperature: 0, max_tokens: MAX_TOKENS, stop_tokens: cm.tokenizer.eosTokenIds, vocab_limit: cm.tokenizer.vocabSize })) ids.push(s.token);
  const base = await startWeb(dir);
  const page = await browser.newPage();
  const got = await chat(page, base);
  assert.deepEqual(got.tokens, ids, 'token ids: the page (HF folder) vs Node');
  await page.close();
});
