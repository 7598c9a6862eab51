// The prefix cache: a multi-turn chat (turn 2 extends turn 1's prompt and answer) gives the same
// tokens and the same log-probabilities with the cache on as off, on a dense model (wasm kernels,
// batch-invariant) and on Qwen3.5 (its recurrent states resumed from checkpoints; the reference
// backend, whose Gated DeltaNet gives the same bits however a prompt is split into passes; the
// wasm one computes long passes in a chunked form that rounds differently), while later turns
// report cached prompt tokens; eviction under a tiny budget; concurrent requests sharing a prefix;
// a budget too small for one block is a one-line error; the engine thread reports cached tokens.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chat, openChatModel, openChatModelThreaded, type ChatEvent, type ChatModel, type ChatResult } from '../../src/chat/engine.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import { BLOCK } from '../../src/generate/prefix_cache.js';
import { chatModelDir, expectError } from '../helpers.js';

const wasm = new WasmBackend({ threads: 2 });
after(() => wasm.dispose());

const SYSTEM = { role: 'system', content: 'You are a careful assistant who answers in short sentences. '.repeat(6) };

async function turn(cm: ChatModel, messages: unknown[], max = 20): Promise<{ events: ChatEvent[]; text: string; r: ChatResult }> {
  const events: ChatEvent[] = [];
  let text = '';
  const it = chat(cm, { messages, temperature: 0, max_tokens: max, logprobs: true, top_logprobs: 4, enable_thinking: false });
  for (;;) {
    const r = await it.next();
    if (r.done) return { events, text, r: r.value };
    events.push(r.value);
    if (r.value.kind === 'content') text += r.value.text;
  }
}

/** Three turns with the cache on and off: identical events; turns 2 and 3 restore cached tokens. */
async function threeTurns(on: ChatModel, off: ChatModel): Promise<void> {
  let msgs: unknown[] = [SYSTEM, { role: 'user', content: 'Tell me about llamas.' }];
  for (let t = 0; t < 3; t++) {
    const a = await turn(on, msgs),
      b = await turn(off, msgs);
    assert.deepEqual(a.events, b.events, `turn ${t + 1}`);
    assert.equal(b.r.cachedTokens, 0);
    if (t === 0) assert.equal(a.r.cachedTokens, 0);
    else {
      assert.ok(a.r.cachedTokens! > 0 && a.r.cachedTokens! % BLOCK === 0 && a.r.cachedTokens! < a.r.promptTokens, `turn ${t + 1}: ${a.r.cachedTokens} cached of ${a.r.promptTokens}`);
    }
    msgs = [...msgs, { role: 'assistant', content: a.text }, { role: 'user', content: `And question ${t + 2}?` }];
  }
  const s = on.scheduler.stats;
  assert.equal(s.prefixHits, 2);
  assert.equal(s.prefixMisses, 1);
}

test('dense (Qwen3, wasm): three chat turns give the same tokens and logprobs with the prefix cache on and off; turns 2 and 3 hit', async () => {
  await threeTurns(openChatModel(chatModelDir(), 'q', { backend: wasm }), openChatModel(chatModelDir(), 'q', { backend: wasm, cacheMem: 0 }));
});

test('Qwen3.5 (reference backend): the same with recurrent-state checkpoints; checkpoints are kept', async () => {
  const be = new ReferenceBackend();
  const on = openChatModel(chatModelDir('qwen3.5'), 'q', { backend: be, onNote: () => {} });
  await threeTurns(on, openChatModel(chatModelDir('qwen3.5'), 'q', { backend: be, cacheMem: 0, onNote: () => {} }));
  assert.ok(on.scheduler.stats.prefixCache!.checkpoints > 0);
});

test('Qwen3.5 (wasm): greedy text the same with the cache on and off over two turns', async () => {
  const on = openChatModel(chatModelDir('qwen3.5'), 'q', { backend: wasm, onNote: () => {} });
  const off = openChatModel(chatModelDir('qwen3.5'), 'q', { backend: wasm, cacheMem: 0, onNote: () => {} });
  let msgs: unknown[] = [SYSTEM, { role: 'user', content: 'Tell me about llamas.' }];
  for (let t = 0; t < 2; t++) {
    const a = await turn(on, msgs),
      b = await turn(off, msgs);
    assert.equal(a.text, b.text, `turn ${t + 1}`);
    msgs = [...msgs, { role: 'assistant', content: a.text }, { role: 'user', content: 'More?' }];
  }
  assert.equal(on.scheduler.stats.prefixHits, 1);
});

const ids = (s: Scheduler, prompt: number[], max = 8) =>
  (async () => {
    let cached = -1;
    const out: number[] = [];
    for await (const st of s.submit(prompt, { temperature: 0, max_tokens: max, onCached: (n) => (cached = n) })) out.push(st.token);
    return { out, cached };
  })();
const base = openChatModel(chatModelDir(), 'q', { backend: wasm, cacheMem: 0 });
const model = base.model;
const prompt = (seed: number, n: number) => Array.from({ length: n }, (_, i) => 1000 + ((i * 7919 + seed * 104729) % 5000));

test('eviction: under a budget of a few blocks the cache stays within it, old prefixes go, answers stay the same', async () => {
  const blockBytes = 4 * model.newCache(1).rowsFloats(BLOCK);
  const s = new Scheduler(model, 256, 8, 5 * blockBytes);
  const A = prompt(1, 4 * BLOCK + 3),
    B = prompt(2, 4 * BLOCK + 3);
  const want = { A: (await ids(base.scheduler, A)).out, B: (await ids(base.scheduler, B)).out };
  assert.equal((await ids(s, A)).cached, 0);
  const a2 = await ids(s, A);
  assert.equal(a2.cached, 4 * BLOCK); // A's four full blocks (74 tokens evaluated)
  assert.deepEqual(a2.out, want.A);
  assert.deepEqual((await ids(s, B)).out, want.B); // B's blocks push A's out
  const st = s.stats.prefixCache!;
  assert.ok(st.bytes <= st.budget && st.evictions > 0, JSON.stringify(st));
  const a3 = await ids(s, A);
  assert.ok(a3.cached < 4 * BLOCK, `A after B: ${a3.cached} cached`);
  assert.deepEqual(a3.out, want.A);
});

test('concurrent requests sharing a cached prefix: each restores it and gets its own answer', async () => {
  const s = new Scheduler(model, 64, 8, 64 << 20);
  const shared = prompt(3, 6 * BLOCK);
  await ids(s, [...shared, 7]);
  const asks = [11, 12, 13, 14].map((t) => [...shared, t, t + 1, t + 2]);
  const want = await Promise.all(asks.map((p) => ids(base.scheduler, p)));
  const got = await Promise.all(asks.map((p) => ids(s, p)));
  got.forEach((g, i) => {
    assert.equal(g.cached, 6 * BLOCK, `request ${i}`);
    assert.deepEqual(g.out, want[i]!.out, `request ${i}`);
  });
  assert.equal(s.stats.prefixCache!.blocks, 6); // the shared prefix's blocks, stored once
  // submitted together on an empty cache (as n choices are): one computes the prefix, the others wait for it
  const fresh = new Scheduler(model, 64, 8, 64 << 20);
  const together = await Promise.all(asks.map((p) => ids(fresh, p)));
  assert.deepEqual(
    together.map((g) => g.cached),
    [0, 6 * BLOCK, 6 * BLOCK, 6 * BLOCK],
  );
  together.forEach((g, i) => assert.deepEqual(g.out, want[i]!.out, `request ${i} (together)`));
  // a prompt sharing less than half of itself does not wait
  const other = new Scheduler(model, 64, 8, 64 << 20);
  const mixed = await Promise.all([asks[0]!, [...shared.slice(0, BLOCK), ...prompt(9, 6 * BLOCK)]].map((p) => ids(other, p)));
  assert.deepEqual(
    mixed.map((g) => g.cached),
    [0, 0],
  );
});

test('a prefix cache too small for one block: a one-line error naming --cache-mem', () => {
  expectError(
    () => new Scheduler(model, 256, 8, 1000),
    /--cache-mem 1000 bytes is too small for this model: one 16-token block of its keys and values takes 4\.0 KiB; give at least 4\.0 KiB, or --no-prefix-cache/,
  );
  expectError(() => openChatModel(chatModelDir('qwen3.5'), 'q', { cacheMem: 4096, onNote: () => {} }), /--cache-mem .* too small .* one checkpoint of its recurrent state/);
});

test('the engine thread: cached tokens and hit counters come back to the HTTP side', async () => {
  const cm = await openChatModelThreaded(chatModelDir(), 'q', { threads: '1' });
  try {
    const msgs = [SYSTEM, { role: 'user', content: 'Hi' }];
    const a = await turn(cm, msgs, 4);
    const b = await turn(cm, [...msgs, { role: 'assistant', content: a.text }, { role: 'user', content: 'Again' }], 4);
    assert.equal(a.r.cachedTokens, 0);
    assert.ok(b.r.cachedTokens! > 0);
    assert.equal(cm.scheduler.stats.prefixHits, 1);
    assert.equal(cm.scheduler.stats.cachedTokens, b.r.cachedTokens);
  } finally {
    await cm.close();
  }
  await assert.rejects(openChatModelThreaded(chatModelDir(), 'q', { threads: '1', cacheMem: 10 }), (e: Error) => e.name === 'QwenError' && /--cache-mem/.test(e.message));
});
