// The chat page in a real browser (playwright-core driving Debian's chromium): it loads, sends a
// message, shows the streamed answer, and its stop button stops a long answer.
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
import { chatModelDir, fixtureDir, tmpDir } from '../helpers.js';

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
