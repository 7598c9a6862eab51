// `qwen-ts serve` as a user starts it: the flags that reach the engine thread (--ctx-size) and the
// server (--response-store, --no-access-log) take effect, and bad values are one-line errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { chatModelDir, ROOT } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** Start serve on a free port; resolves with its URL once it listens, and everything it wrote to stderr so far. */
function serve(args: string[]): Promise<{ proc: ChildProcess; url: string; err: () => string }> {
  const proc = spawn(process.execPath, [CLI, 'serve', chatModelDir(), '--port', '0', '--threads', '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill();
      reject(new Error(`serve did not start:\n${err}`));
    }, 60_000);
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving \S+ at (http:\/\/\S+)\/v1/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1]!, err: () => err });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}):\n${err}`));
    });
  });
}

async function chat(url: string, content: string): Promise<{ status: number; body: { error?: { code?: string; message?: string } } }> {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: chatModelDir(), messages: [{ role: 'user', content }], max_tokens: 2 }),
  });
  return { status: r.status, body: (await r.json()) as { error?: { code?: string; message?: string } } };
}

test('serve --ctx-size caps the context the engine thread loads with; --no-access-log silences the request lines', async () => {
  const s = await serve(['--ctx-size', '48', '--no-access-log']);
  try {
    const ok = await chat(s.url, 'Hi');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const long = await chat(s.url, 'word '.repeat(60));
    assert.equal(long.status, 400);
    assert.equal(long.body.error?.code, 'context_length_exceeded');
    assert.match(long.body.error?.message ?? '', /holds 48\b/);
    assert.doesNotMatch(s.err(), /POST \/v1\/chat\/completions/);
  } finally {
    s.proc.kill();
  }
});

test('serve writes one access-log line per request by default; --response-store 0 keeps no responses', async () => {
  const s = await serve(['--response-store', '0']);
  try {
    const r = await fetch(`${s.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: chatModelDir(), input: 'Hi', max_output_tokens: 2 }),
    });
    assert.equal(r.status, 200);
    const { id } = (await r.json()) as { id: string };
    const got = await fetch(`${s.url}/v1/responses/${id}`);
    assert.equal(got.status, 404);
    await new Promise((res) => setTimeout(res, 100)); // the log line is written as the response ends
    assert.match(s.err(), /POST \/v1\/responses 200/);
  } finally {
    s.proc.kill();
  }
});

test('serve: bad --ctx-size and --response-store values are one-line errors before loading', () => {
  for (const [flag, value, re] of [
    ['--ctx-size', '0', /^qwen-ts serve: --ctx-size must be a positive integer, got '0'\n$/],
    ['--response-store', 'x', /^qwen-ts serve: --response-store must be a whole number >= 0, got 'x'\n$/],
  ] as const) {
    const r = spawnSync(process.execPath, [CLI, 'serve', chatModelDir(), flag, value], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, re);
  }
});
