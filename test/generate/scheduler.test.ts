// The scheduler: concurrent requests batched together give each one's own greedy output
// (llama.cpp's greedy ids), and a consumer that leaves cancels its request.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Scheduler } from '../../src/generate/scheduler.js';
import { loadModel } from '../../src/models/load.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { fixtureDir } from '../helpers.js';

const dir = fixtureDir('models/qwen2-tiny-tied');
const model = loadModel(dir);
const wasm = new WasmBackend({ threads: 2, poison: true });
after(() => wasm.dispose());
const fastModel = loadModel(dir, { backend: wasm });
const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));

async function ids(it: AsyncGenerator<{ token: number }, string>): Promise<{ ids: number[]; finish: string }> {
  const out: number[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { ids: out, finish: r.value };
    out.push(r.value.token);
  }
}

for (const [label, model] of [
  ['reference', () => loadModel(dir)],
  ['wasm', () => fastModel],
] as const)
  test(`${label} backend: concurrent greedy requests each get llama.cpp's greedy ids (small budget forces chunked, interleaved prefill)`, async () => {
    const s = new Scheduler(model(), 16);
    const [a, b] = ref.cases;
    const runs = await Promise.all([
      ids(s.submit(a.prompt_ids, { temperature: 0, max_tokens: a.greedy_generated_ids.length })),
      ids(s.submit(b.prompt_ids, { temperature: 0, max_tokens: b.greedy_generated_ids.length })),
      ids(s.submit(a.prompt_ids, { temperature: 0, max_tokens: 5 })),
      ids(s.submit(b.prompt_ids, { temperature: 1, seed: 3, max_tokens: 6 })),
    ]);
    assert.deepEqual(runs[0]!.ids, a.greedy_generated_ids);
    assert.deepEqual(runs[1]!.ids, b.greedy_generated_ids);
    assert.deepEqual(runs[2]!.ids, a.greedy_generated_ids.slice(0, 5));
    assert.equal(runs[2]!.finish, 'length');
    // a seeded sampled run is the same alone as in company
    const alone = await ids(new Scheduler(model()).submit(b.prompt_ids, { temperature: 1, seed: 3, max_tokens: 6 }));
    assert.deepEqual(runs[3]!.ids, alone.ids);
    assert.equal(s.load, 0);
  });

test('leaving the iteration cancels the request; an abort signal ends it with "abort"', async () => {
  const s = new Scheduler(model);
  const p = ref.cases[1].prompt_ids;
  const it = s.submit(p, { temperature: 0, max_tokens: 100 });
  await it.next();
  await it.return('abort');
  const ac = new AbortController();
  const it2 = s.submit(p, { temperature: 0, max_tokens: 100, signal: ac.signal });
  await it2.next();
  ac.abort();
  const r = await ids(it2);
  assert.equal(r.finish, 'abort');
  assert.ok(r.ids.length < 100);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.load, 0);
});

test('bad parameters throw at submit, before anything is queued', () => {
  const s = new Scheduler(model);
  assert.throws(() => s.submit([], { max_tokens: 1 }), /prompt is empty/);
  assert.throws(() => s.submit([1, 999], { max_tokens: 1 }), /prompt token id 999 is out of range/);
  assert.equal(s.load, 0);
});

test('finished requests give their KV cache back: the WebAssembly heap does not grow request after request', async () => {
  const s = new Scheduler(fastModel);
  const prompt = ref.cases[0].prompt_ids;
  const runOne = () => ids(s.submit(prompt, { temperature: 1, seed: 1, max_tokens: 200 }));
  for (let i = 0; i < 3; i++) await runOne(); // warm up: the heap reaches its working size
  const before = wasm.memoryBytes();
  for (let i = 0; i < 20; i++) await runOne();
  assert.equal(wasm.memoryBytes(), before);
});

test('beyond maxActive, requests wait their turn (first come, first served) and still get their own output', async () => {
  const s = new Scheduler(model, 64, 2);
  const [a, b] = ref.cases;
  let peak = 0;
  const watch = async (it: AsyncGenerator<{ token: number }, string>) => {
    const out: number[] = [];
    for (;;) {
      peak = Math.max(peak, s.activeCount);
      const r = await it.next();
      if (r.done) return out;
      out.push(r.value.token);
    }
  };
  const waitingCancelled = new AbortController();
  const runs = [a, b, a, b].map((c) => watch(s.submit(c.prompt_ids, { temperature: 0, max_tokens: 4 })));
  const cancelled = s.submit(a.prompt_ids, { temperature: 0, max_tokens: 4, signal: waitingCancelled.signal });
  assert.equal(s.load, 5);
  waitingCancelled.abort();
  const results = await Promise.all(runs);
  results.forEach((r, i) => assert.deepEqual(r, [a, b][i % 2]!.greedy_generated_ids.slice(0, 4)));
  assert.ok(peak <= 2, `at most 2 generating at once, saw ${peak}`);
  assert.deepEqual(await ids(cancelled), { ids: [], finish: 'abort' });
  assert.equal(s.load, 0);
});

// Qwen3.5: DeltaNet layers carry a recurrent state per sequence instead of a KV cache
const q35dir = fixtureDir('models/qwen35-tiny');
const q35ref = JSON.parse(fs.readFileSync(path.join(q35dir, 'reference.json'), 'utf8'));
const q35 = loadModel(path.join(q35dir, 'model-f32.gguf'), { backend: wasm });

test("Qwen3.5 (hybrid DeltaNet): four concurrent requests of different lengths each get llama.cpp's greedy ids", async () => {
  const s = new Scheduler(q35, 7); // small budget: prompts prefill in interleaved chunks while others decode
  const cs = q35ref.cases as { prompt_ids: number[]; greedy_generated_ids: number[] }[];
  const runs = await Promise.all(cs.map((c) => ids(s.submit(c.prompt_ids, { temperature: 0, max_tokens: c.greedy_generated_ids.length }))));
  runs.forEach((r, i) => assert.deepEqual(r.ids, cs[i]!.greedy_generated_ids, `case ${i}`));
  // finished sequences give their recurrent states back too
  const before = wasm.memoryBytes();
  for (let i = 0; i < 5; i++) await Promise.all(cs.map((c) => ids(s.submit(c.prompt_ids, { temperature: 1, seed: i, max_tokens: 12 }))));
  assert.equal(wasm.memoryBytes(), before);
  assert.equal(s.load, 0);
});
