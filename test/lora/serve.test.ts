// serve with LoRA adapters (serve --lora NAME=PATH): the official `openai` client picks an adapter by
// "model"; concurrent requests for two adapters and the base model share the engine thread's
// batches (and its prefix cache) and answer exactly as each alone.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { openChatModelThreaded, type ThreadedChatModel } from '../../src/chat/engine.js';
import { parseHfConfig } from '../../src/models/config.js';
import { writePeftAdapter } from '../../src/lora/peft.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir, listen, tmpDir } from '../helpers.js';
import { randomAdapter } from './util.js';

const MODEL = 'qwen3-tiny';
let server: Server, cm: ThreadedChatModel, client: OpenAI;

before(async () => {
  const dir = chatModelDir();
  const config = parseHfConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), dir);
  const work = tmpDir();
  // large enough to change greedy answers
  writePeftAdapter(path.join(work, 'a'), randomAdapter(config, { r: 8, alpha: 16, amp: 0.3, seed: 21 }));
  writePeftAdapter(path.join(work, 'b'), randomAdapter(config, { r: 4, alpha: 8, amp: 0.3, seed: 22, targets: ['q_proj', 'v_proj', 'down_proj'] }));
  cm = await openChatModelThreaded(dir, MODEL, {
    threads: '2',
    parallel: 8,
    lora: [
      { name: 'style-a', path: path.join(work, 'a') },
      { name: 'style-b', path: path.join(work, 'b') },
    ],
  });
  server = createServer(cm, { accessLog: false });
  client = new OpenAI({ apiKey: 'x', baseURL: `${await listen(server)}/v1`, maxRetries: 0, timeout: 60_000 });
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await cm.close();
});

const ask = async (model: string, q: string) => {
  const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: q }], temperature: 0, max_tokens: 10, logprobs: true });
  return { model: r.model, text: r.choices[0]!.message.content, lps: r.choices[0]!.logprobs!.content!.map((t) => t.logprob) };
};

test('/v1/models lists the adapters; an unknown model is a 404', async () => {
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    [MODEL, 'style-a', 'style-b'],
  );
  assert.equal((await client.models.retrieve('style-b')).id, 'style-b');
  await assert.rejects(ask('style-c', 'hi'), (e: Error) => e instanceof OpenAI.NotFoundError && /style-c/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: 'style-a', input: 'hi' }), (e: Error) => e instanceof OpenAI.BadRequestError && /is a LoRA adapter/.test(e.message));
});

test('mixed concurrent requests for two adapters and the base model answer exactly as each alone', async () => {
  const jobs: [string, string][] = [
    [MODEL, 'Tell me a joke about llamas, please.'],
    ['style-a', 'Tell me a joke about llamas, please.'],
    ['style-b', 'Tell me a joke about llamas, please.'],
    ['style-a', 'What is the capital of France?'],
    [MODEL, 'What is the capital of France?'],
    ['style-b', 'Name three colours.'],
  ];
  const alone: Awaited<ReturnType<typeof ask>>[] = [];
  for (const [m, q] of jobs) alone.push(await ask(m, q));
  // the adapters change the answers (so the comparison below can fail)
  assert.notDeepEqual(alone[0]!.lps, alone[1]!.lps);
  assert.notDeepEqual(alone[1]!.lps, alone[2]!.lps);
  assert.deepEqual(
    alone.map((a) => a.model),
    jobs.map(([m]) => m),
  );
  for (let round = 0; round < 2; round++) {
    const together = await Promise.all(jobs.map(([m, q]) => ask(m, q)));
    together.forEach((t, i) => assert.deepEqual(t, alone[i], `request ${i} (${jobs[i]![0]}), round ${round}`));
  }
});

test("the prefix cache keeps each adapter's keys and values apart", async () => {
  const cached = async (model: string) => {
    const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'A prompt long enough to fill a cache block or two.' }], temperature: 0, max_tokens: 2 });
    return r.usage?.prompt_tokens_details?.cached_tokens ?? -1;
  };
  assert.equal(await cached(MODEL), 0);
  assert.equal(await cached('style-a'), 0, "the base model's blocks are not reused for an adapter");
  assert.ok((await cached('style-a')) > 0, 'the same adapter reuses its own');
  assert.ok((await cached(MODEL)) > 0);
});
