// generate(): greedy generation reproduces llama.cpp's greedy ids; stop tokens, max_tokens,
// abort, seeds; stop strings held back across pieces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate, type GenerateOptions } from '../../src/generate/generate.js';
import { StopStrings } from '../../src/generate/stop.js';
import { loadModel } from '../../src/models/load.js';
import { fixtureDir } from '../helpers.js';

const dir = fixtureDir('models/qwen3-tiny-tied');
const model = loadModel(dir);
const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));

async function collect(prompt: number[], o: GenerateOptions) {
  const it = generate(model, prompt, o);
  const ids: number[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { ids, finish: r.value };
    ids.push(r.value.token);
  }
}

test("greedy generation gives llama.cpp's greedy ids for every reference case", async () => {
  for (const c of ref.cases) {
    const r = await collect(c.prompt_ids, { temperature: 0, max_tokens: c.greedy_generated_ids.length });
    assert.deepEqual(r.ids, c.greedy_generated_ids);
    assert.equal(r.finish, 'length');
  }
});

test('prefill in small batches gives the same greedy ids', async () => {
  const c = ref.cases[1];
  const r = await collect(c.prompt_ids, { temperature: 0, max_tokens: 8, prefill_batch: 7 });
  assert.deepEqual(r.ids, c.greedy_generated_ids.slice(0, 8));
});

test('a stop token ends generation before it is yielded', async () => {
  const c = ref.cases[0];
  const stopAt = c.greedy_generated_ids[3];
  const r = await collect(c.prompt_ids, { temperature: 0, max_tokens: 12, stop_tokens: [stopAt] });
  assert.deepEqual(r.ids, c.greedy_generated_ids.slice(0, c.greedy_generated_ids.indexOf(stopAt)));
  assert.equal(r.finish, 'stop');
});

test('a seed reproduces a sampled continuation; logprobs come with each step', async () => {
  const p = ref.cases[0].prompt_ids;
  const a = await collect(p, { temperature: 1, seed: 5, max_tokens: 10 });
  const b = await collect(p, { temperature: 1, seed: 5, max_tokens: 10 });
  assert.deepEqual(a.ids, b.ids);
  const it = generate(model, p, { temperature: 0, max_tokens: 1, logprobs: true, top_logprobs: 3 });
  const s = (await it.next()).value as { token: number; logprob: number; top: { id: number; logprob: number }[] };
  assert.equal(s.top.length, 3);
  assert.equal(s.top[0]!.id, s.token);
  assert.ok(s.logprob < 0 && s.logprob === s.top[0]!.logprob);
});

test('abort stops generation; bad parameters are errors', async () => {
  const ac = new AbortController();
  const it = generate(model, ref.cases[0].prompt_ids, { temperature: 0, max_tokens: 50, signal: ac.signal });
  await it.next();
  ac.abort();
  const r = await it.next();
  assert.equal(r.done, true);
  assert.equal(r.value, 'abort');
  await assert.rejects(collect([], { max_tokens: 3 }), /prompt is empty/);
  await assert.rejects(collect([1], { max_tokens: 0 }), /max_tokens must be a positive integer/);
  await assert.rejects(collect(new Array(300).fill(1), { max_tokens: 1 }), /context holds 256/);
  await assert.rejects(collect([1], { max_tokens: 1, top_p: 2 }), /top_p/);
});

test('stop strings: held back across pieces, never shown, text before them kept', () => {
  const s = new StopStrings(['</tool_call>', '\n\nUser:']);
  const out: string[] = [];
  let stopped = false;
  for (const piece of ['Hello', ' wor', 'ld\n', '\nUs', 'er: hi']) {
    const r = s.push(piece);
    out.push(r.text);
    if (r.stopped) {
      stopped = true;
      break;
    }
  }
  assert.equal(stopped, true);
  assert.equal(out.join(''), 'Hello world');
  const t = new StopStrings(['abc']);
  assert.deepEqual(t.push('xxab'), { text: 'xx', stopped: false });
  assert.deepEqual(t.push('d'), { text: 'abd', stopped: false });
  assert.deepEqual(t.push('a'), { text: '', stopped: false });
  assert.equal(t.flush(), 'a');
});
