// The chat page in a real browser (playwright-core driving Debian's chromium): it loads, sends a
// message, shows the streamed answer, and its stop button stops a long answer; with a vision model
// (the model double of test/vision/vl_double.ts), an attached and a pasted image are shown as
// thumbnails, sent as data: URLs, and answered.
// Without /usr/bin/chromium the test is skipped with a note, unless QWEN_TS_REQUIRE_BROWSER=1
// (CI installs chromium and sets it, so there it must run).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import { openChatModel, type ChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import { ImageQueue } from '../../src/vision/jobs.js';
import { chatModelDir, fixtureDir, listen, tmpDir } from '../helpers.js';
import { A, B, fakeTower, tok, vl } from '../vision/vl_double.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const have = fs.existsSync(CHROMIUM);
if (!have && process.env.QWEN_TS_REQUIRE_BROWSER === '1') throw new Error(`${CHROMIUM} is missing, and QWEN_TS_REQUIRE_BROWSER=1`);
const skip = have ? false : `no browser at ${CHROMIUM} (apt-get install chromium)`;

let server: Server, cm: ChatModel, base: string, browser: Browser;
const ref = JSON.parse(fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-realvocab'), 'reference.json'), 'utf8')).cases[0];

before(async () => {
  if (!have) return;
  cm = openChatModel(chatModelDir(), 'qwen3-tiny');
  server = createServer(cm);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
});
after(async () => {
  await browser?.close();
  if (server) await new Promise<void>((r) => server.close(() => r()));
});

test('the page loads, sends a message and shows the streamed answer', { skip }, async () => {
  const page = await browser.newPage();
  await page.goto(base + '/');
  await page.waitForFunction(() => document.getElementById('model')!.textContent === 'qwen3-tiny');
  await page.fill('#temperature', '0');
  await page.fill('#max_tokens', '16');
  await page.fill('#input', 'Hello, world! 你好，世界。 Tell me a joke about llamas 🦙.');
  await page.press('#input', 'Enter');
  await page.waitForSelector('.msg.assistant[data-done="true"]', { timeout: 60_000 });
  const shown = await page.textContent('.msg.assistant .content');
  const expected = cm.tokenizer.decode(ref.greedy_generated_ids);
  assert.equal(shown!.replace(/\s+/g, ' ').trim(), expected.replace(/\s+/g, ' ').trim());
  assert.equal(await page.textContent('.msg.user'), 'Hello, world! 你好，世界。 Tell me a joke about llamas 🦙.');
  const shot = path.join(tmpDir(), 'page.png');
  await page.screenshot({ path: shot });
  assert.ok(fs.statSync(shot).size > 1000);
  await page.close();
});

test('the stop button stops a long answer and the page can send again', { skip }, async () => {
  const page = await browser.newPage();
  await page.goto(base + '/');
  await page.waitForFunction(() => document.getElementById('model')!.textContent !== '');
  await page.fill('#max_tokens', '200');
  await page.fill('#input', 'Tell me everything.');
  await page.press('#input', 'Enter');
  await page.waitForFunction(() => (document.querySelector('.msg.assistant .content')?.textContent ?? '').length > 0, null, { timeout: 60_000 });
  await page.click('#stop');
  await page.waitForSelector('.msg.assistant[data-done="stopped"]', { timeout: 10_000 });
  for (let i = 0; i < 100 && cm.scheduler.load > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(cm.scheduler.load, 0, 'the server stopped generating');
  assert.equal(await page.isDisabled('#send'), false);
  await page.close();
});

test('images: attached with the file button and pasted, shown as thumbnails, sent and answered', { skip }, async () => {
  const vcm: ChatModel = {
    name: 'vl',
    path: '',
    model: vl,
    config: vl.config,
    tokenizer: tok,
    scheduler: new Scheduler(vl),
    templateFallback: false,
    toolFormat: 'json',
    vision: new ImageQueue(fakeTower()),
  };
  const vs = createServer(vcm, { accessLog: false });
  const url = await listen(vs);
  const page = await browser.newPage();
  try {
    await page.goto(url + '/');
    await page.waitForFunction(() => document.getElementById('model')!.textContent === 'vl');
    await page.fill('#temperature', '0');
    await page.setInputFiles('#file', { name: 'a.png', mimeType: 'image/png', buffer: A });
    await page.waitForSelector('#pending img');
    await page.fill('#input', 'What is in this picture?');
    await page.press('#input', 'Enter');
    await page.waitForSelector('.msg.assistant[data-done="true"]', { timeout: 30_000 });
    assert.equal((await page.textContent('.msg.assistant .content'))!.trim(), 'pads=6'); // the image's 2 x 3 rows reached the model
    assert.equal(await page.locator('.msg.user img').count(), 1);
    assert.match((await page.getAttribute('.msg.user img', 'src'))!, /^data:image\/png;base64,/);
    assert.equal(await page.locator('#pending img').count(), 0);
    // paste an image into the message box: the second turn holds both images
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'b.png', { type: 'image/png' }));
      document.getElementById('input')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, B.toString('base64'));
    await page.waitForSelector('#pending img');
    await page.fill('#input', 'And this one?');
    await page.press('#input', 'Enter');
    await page.waitForSelector('.msg.assistant:nth-of-type(4)[data-done="true"]', { timeout: 30_000 });
    assert.equal((await page.locator('.msg.assistant .content').nth(1).textContent())!.trim(), 'pads=10');
    assert.equal(await page.locator('.msg.user img').count(), 2);
  } finally {
    await page.close();
    await new Promise<void>((r) => vs.close(() => r()));
  }
});
