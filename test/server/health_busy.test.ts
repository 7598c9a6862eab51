// Issue 13's responsiveness check: with the engine on its own thread, /health answers quickly
// (p99 < 50 ms) while a 2,000-token prompt prefills on a Qwen2.5-0.5B-shaped model (random Q8_0
// weights written at test time; in process, a 256-token prefill chunk of this shape holds the
// event loop for ~1.6 s on a 2-core machine). Only polls answered before the prefill ended count.
// A short request first warms both threads up (JIT, lazily loaded modules, the kernels' first
// run): a first request's one-off costs are not what this measures. The bound is the issue's 50 ms
// unless other processes oversubscribe the machine (load average over twice the cores as the test
// starts: a shared CI box or several test runs at once), where their time slices, not this
// server, set the delays: then 250 ms, still far below the in-process stall of a whole chunk.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { openChatModelThreaded, type ThreadedChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { tmpDir } from '../helpers.js';
import { writeRandomQwen2 } from '../engine/random_model.js';

let dir: string, cm: ThreadedChatModel, server: Server, base: string;
const MODEL = 'qwen2.5-0.5b-shape';

before(async () => {
  dir = writeRandomQwen2(tmpDir('qwen-ts-health-'));
  cm = await openChatModelThreaded(dir, MODEL);
  server = createServer(cm);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await cm.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A text of exactly `n` tokens. */
function promptOf(n: number): string {
  const words = Array.from({ length: n }, (_, i) => ` w${(i * 7919) % 1000}`).join('');
  return cm.tokenizer.decode(cm.tokenizer.encode(words).slice(0, n));
}

test('/health p99 < 50 ms while a 2,000-token prompt prefills (engine thread)', async () => {
  const post = (body: object, signal?: AbortSignal) =>
    fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      signal,
      body: JSON.stringify({ model: MODEL, temperature: 0, ...body }),
    });
  assert.equal((await post({ prompt: 'Hello', max_tokens: 1 })).status, 200);
  const busy = os.loadavg()[0]! > 2 * os.availableParallelism();
  const prompt = promptOf(2000);
  assert.equal(cm.tokenizer.encode(prompt).length, 2000);
  const ac = new AbortController();
  let finished = false;
  const req = post({ prompt, max_tokens: 1 }, ac.signal).then(
    async (r) => {
      await r.text();
      finished = true;
    },
    () => {
      finished = true;
    },
  );
  // wait until the engine has the request (its prefill starts at once)
  for (let i = 0; i < 200 && cm.scheduler.load === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(cm.scheduler.load, 1);
  const lat: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < 6000) {
    const t = performance.now();
    const h = (await (await fetch(`${base}/health`)).json()) as { active_requests: number };
    if (finished) break; // answered after the prefill: not a measurement under load
    lat.push(performance.now() - t);
    assert.equal(h.active_requests, 1);
    await new Promise((r) => setTimeout(r, 10));
  }
  ac.abort();
  await req;
  lat.sort((a, b) => a - b);
  const p99 = lat[Math.floor(0.99 * (lat.length - 1))]!;
  console.log(
    `# /health during prefill: ${lat.length} polls, median ${lat[lat.length >> 1]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${lat[lat.length - 1]!.toFixed(1)} ms${finished ? '' : ' (prefill still running after 6 s)'}${busy ? `; machine oversubscribed (load average ${os.loadavg()[0]!.toFixed(1)}): bound 250 ms` : ''}`,
  );
  assert.ok(lat.length >= 20, `only ${lat.length} polls before the prefill ended`);
  const bound = busy ? 250 : 50;
  assert.ok(p99 < bound, `/health p99 ${p99.toFixed(1)} ms (bound ${bound} ms; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores)`);
  // the engine sees the cancel between forward passes (a prefill chunk: seconds on a busy machine)
  for (let i = 0; i < 1500 && cm.scheduler.load > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(cm.scheduler.load, 0, 'the cancelled request ended');
});
