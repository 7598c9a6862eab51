// The sampler: seeded reproducibility, greedy, the filters, the penalties, logprobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSamplerParams, logprobs, penalize, Rng, sample, topN } from '../../src/generate/sampler.js';

const H = { prompt: [], generated: [] };
const L = Float32Array.from([1.0, 3.0, 2.0, 0.5, 2.9]);

function freqs(p: Parameters<typeof sample>[1], n = 20000, seed = 7, logits = L): number[] {
  const rng = new Rng(seed);
  const c = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[sample(logits, p, H, rng)]++;
  return c.map((x) => x / n);
}

test('Rng: same seed, same stream; different seeds differ; uniform in [0,1)', () => {
  const a = new Rng(42),
    b = new Rng(42),
    c = new Rng(43);
  const xa = Array.from({ length: 1000 }, () => a.next());
  assert.deepEqual(
    xa,
    Array.from({ length: 1000 }, () => b.next()),
  );
  assert.notDeepEqual(
    xa,
    Array.from({ length: 1000 }, () => c.next()),
  );
  assert.ok(xa.every((x) => x >= 0 && x < 1));
  const mean = xa.reduce((s, x) => s + x, 0) / xa.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test('temperature 0 and top_k 1 are greedy', () => {
  assert.equal(sample(L, { temperature: 0 }, H, new Rng(1)), 1);
  for (let s = 0; s < 20; s++) assert.equal(sample(L, { top_k: 1 }, H, new Rng(s)), 1);
});

test('temperature 1 draws from softmax(logits) (frequencies within 0.015 over 20000 draws)', () => {
  const e = Array.from(L, (x) => Math.exp(x));
  const z = e.reduce((a, b) => a + b, 0);
  freqs({}).forEach((f, i) => assert.ok(Math.abs(f - e[i]! / z) < 0.015, `token ${i}: ${f} vs ${e[i]! / z}`));
});

test('temperature 0.5 sharpens: softmax(logits / 0.5)', () => {
  const e = Array.from(L, (x) => Math.exp(x / 0.5));
  const z = e.reduce((a, b) => a + b, 0);
  freqs({ temperature: 0.5 }).forEach((f, i) => assert.ok(Math.abs(f - e[i]! / z) < 0.015));
});

test('top_k 2 keeps the two best; top_p and min_p cut the tail', () => {
  const f = freqs({ top_k: 2 });
  assert.deepEqual(
    f.map((x) => x > 0),
    [false, true, false, false, true],
  );
  // probabilities: [.06, .38, .14, .04, .35] (approximately): top_p 0.7 keeps ids 1 and 4
  assert.deepEqual(
    freqs({ top_p: 0.7 }).map((x) => x > 0),
    [false, true, false, false, true],
  );
  // min_p 0.3: keep tokens with p >= 0.3 * p_max, i.e. ids 1, 4 and 2 (0.14/0.38 = 0.37)
  assert.deepEqual(
    freqs({ min_p: 0.3 }).map((x) => x > 0),
    [false, true, true, false, true],
  );
});

test('same seed, same samples; penalties change the logits as defined', () => {
  assert.deepEqual(freqs({}, 500, 3), freqs({}, 500, 3));
  const rep = penalize(Float32Array.from([2, -2, 1]), { repetition_penalty: 2 }, { prompt: [0], generated: [1] });
  assert.deepEqual(Array.from(rep), [1, -4, 1]);
  const of = penalize(Float32Array.from([2, 2, 2]), { presence_penalty: 0.5, frequency_penalty: 0.25 }, { prompt: [2], generated: [0, 0, 1] });
  assert.deepEqual(Array.from(of), [2 - 0.5 - 0.5, 2 - 0.5 - 0.25, 2]);
});

test('an allowed() mask is obeyed even against the logits', () => {
  for (let s = 0; s < 50; s++)
    assert.equal(
      sample(L, {}, H, new Rng(s), (id) => id === 3),
      3,
    );
});

test('logprobs: log-softmax of the logits; top entries sorted; topN agrees with a full sort', () => {
  const lp = logprobs(L, 2, 3);
  const z = Math.log(Array.from(L).reduce((a, x) => a + Math.exp(x), 0));
  assert.ok(Math.abs(lp.logprob - (2 - z)) < 1e-6);
  assert.deepEqual(
    lp.top.map((t) => t.id),
    [1, 4, 2],
  );
  const r = new Rng(9);
  const big = Float32Array.from({ length: 1000 }, () => Math.round(r.next() * 50));
  const sorted = Array.from(big.keys()).sort((a, b) => big[b]! - big[a]! || a - b);
  assert.deepEqual(topN(big, 20), sorted.slice(0, 20));
});

test('invalid parameters are named', () => {
  assert.match(checkSamplerParams({ temperature: -1 })!, /temperature/);
  assert.match(checkSamplerParams({ top_p: 1.5 })!, /top_p/);
  for (let seed = 0; seed < 10; seed++) assert.equal(sample(L, { top_p: 0 }, H, new Rng(seed)), 1, 'top_p 0 keeps the best token only');
  assert.match(checkSamplerParams({ top_k: 1.5 })!, /top_k/);
  assert.match(checkSamplerParams({ presence_penalty: 3 })!, /presence_penalty/);
  assert.equal(checkSamplerParams({ temperature: 0.7, top_p: 0.9, top_k: 40 }), undefined);
});
