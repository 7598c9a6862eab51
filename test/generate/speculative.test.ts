// Speculative decoding (--spec ngram, --draft MODEL): greedy output token for token (and logprob for
// logprob) the same as plain decoding, alone and batched with other sequences, on a dense model and
// on Qwen3.5 (whose recurrent state is restored after a rejection); proposals both accepted and
// rejected; the rejection-sampling step gives exactly the target's distribution (computed, and
// drawn); a constrained request still validates; a draft with another vocabulary and --spec mtp
// without MTP heads are one-line errors.
import { Metrics } from '../../src/server/metrics.js';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { openChatModel, openChatModelThreaded } from '../../src/chat/engine.js';
import { jsonConstraint } from '../../src/generate/constrain/index.js';
import { generate, type GenerateOptions, type Speculation } from '../../src/generate/generate.js';
import { distribution, Rng, type Choice } from '../../src/generate/sampler.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import { acceptance, ngramProposal, residual, verifyToken } from '../../src/generate/spec.js';
import { loadModel } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';
import { chatModelDir, expectError, fixtureDir, rng, ROOT, tmpDir } from '../helpers.js';

const wasm = new WasmBackend({ threads: 2 });
after(() => wasm.dispose());
const quiet = { backend: wasm, onNote: () => {} };

// dense: the Qwen3 real-vocabulary fixture, drafted by a Q4_0 copy of itself (agrees often, not always) or by itself
const dense = loadModel(chatModelDir(), quiet);
const denseQ4 = loadModel(chatModelDir(), { ...quiet, quantize: 'q4_0' });
// Qwen3.5: drafted by its Q8_0 file (recurrent draft too), by another model of its vocabulary, or by itself
const Q35 = fixtureDir('models/qwen35-tiny');
const q35 = loadModel(path.join(Q35, 'model-f32.gguf'), quiet);
const q35Q8 = loadModel(path.join(Q35, 'model-q8_0.gguf'), quiet);
const q35Tied = loadModel(path.join(fixtureDir('models/qwen35-tiny-tied'), 'model-f32.gguf'), quiet);

// Qwen3.5's prompts stay under 16 tokens: the wasm Gated DeltaNet runs 16 rows or more of one
// sequence in a chunked form that rounds differently, so a prompt split into other chunks (the
// scheduler's budget) would change the last bits whether or not it speculates
const prompts = (V: number, long = V > 1000) => [1, 2, 3, 4].map((s) => Array.from({ length: long ? 12 + 5 * s : 3 * s + 2 }, (_, i) => (i * 37 * s + 11 * s) % V));

interface Out {
  tokens: number[];
  logprobs: number[];
  tops: string;
  finish: string;
}

async function collect(it: AsyncGenerator<{ token: number; logprob?: number; top?: unknown }, string>): Promise<Out> {
  const o: Out = { tokens: [], logprobs: [], tops: '', finish: '' };
  for (;;) {
    const r = await it.next();
    if (r.done) return { ...o, finish: r.value };
    o.tokens.push(r.value.token);
    o.logprobs.push(r.value.logprob!);
    o.tops += JSON.stringify(r.value.top);
  }
}

const OPTS: GenerateOptions = { temperature: 0, max_tokens: 40, logprobs: true, top_logprobs: 3 };

/** Each prompt through a batched scheduler with `spec` (two at once, two more joining as they decode) against plain generate(). */
async function sameAsPlain(target: CausalLM, spec: Speculation, o: GenerateOptions = OPTS): Promise<{ proposed: number; accepted: number }> {
  const ps = prompts(target === dense ? 5000 : 300);
  const want = await Promise.all(ps.map((p) => collect(generate(target, p, o))));
  const s = new Scheduler(target, 16, 4, 0, spec); // a 16-token budget: later prompts prefill in chunks beside the decoding ones
  const first = ps.slice(0, 2).map((p) => collect(s.submit(p, o)));
  await new Promise((r) => setTimeout(r, 30));
  const got = await Promise.all([...first, ...ps.slice(2).map((p) => collect(s.submit(p, o)))]);
  got.forEach((g, i) => assert.deepEqual(g, want[i], `prompt ${i}`));
  // generate() speculates the same way on its own
  assert.deepEqual(await collect(generate(target, ps[0]!, o, spec)), want[0]);
  return s.stats.speculation!;
}

test('dense: greedy tokens and logprobs with --spec ngram and --draft equal plain decoding, batched; a Q4_0 draft has proposals kept and refused', async () => {
  const ng = await sameAsPlain(dense, { method: 'ngram' });
  assert.ok(ng.proposed > 0);
  const q4 = await sameAsPlain(dense, { method: 'draft', model: denseQ4, pMin: 0, max: 4 });
  assert.ok(q4.accepted > 0 && q4.accepted < q4.proposed, `${q4.accepted} of ${q4.proposed} kept`);
  const self = await sameAsPlain(dense, { method: 'draft', model: dense, pMin: 0 });
  assert.ok(self.proposed > 0 && self.accepted === self.proposed, 'the target as its own draft: every proposal kept');
  // by default a draft proposes only where it is sure (top probability 0.75): this random model never is
  const unsure = await sameAsPlain(dense, { method: 'draft', model: dense });
  assert.equal(unsure.proposed, 0);
});

test('Qwen3.5: the same with the recurrent state restored after rejections (drafts: its Q8_0 file, another model, itself)', async () => {
  const ng = await sameAsPlain(q35, { method: 'ngram', max: 3 });
  assert.ok(ng.proposed > 0);
  const q8 = await sameAsPlain(q35, { method: 'draft', model: q35Q8, pMin: 0 });
  assert.ok(q8.accepted > 0 && q8.accepted < q8.proposed, `${q8.accepted} of ${q8.proposed} kept`);
  const other = await sameAsPlain(q35, { method: 'draft', model: q35Tied, pMin: 0, max: 2 });
  assert.ok(other.accepted < other.proposed);
  const self = await sameAsPlain(q35, { method: 'draft', model: q35, pMin: 0 });
  assert.equal(self.accepted, self.proposed);
});

test('with the prefix cache: blocks and checkpoints kept while speculating hold only kept tokens (a second turn = plain decoding)', async () => {
  const ref = new ReferenceBackend(); // Qwen3.5 here on the reference backend: its bits do not depend on how a prompt is split
  const r35 = loadModel(path.join(Q35, 'model-f32.gguf'), { backend: ref, onNote: () => {} });
  const r35Q8 = loadModel(path.join(Q35, 'model-q8_0.gguf'), { backend: ref, onNote: () => {} });
  for (const [target, spec, V] of [
    [dense, { method: 'draft', model: denseQ4, pMin: 0, max: 5 }, 5000],
    [r35, { method: 'draft', model: r35Q8, pMin: 0, max: 3 }, 300],
  ] as const) {
    const s = new Scheduler(target, 64, 2, 1 << 26, spec);
    const o = { ...OPTS, max_tokens: 45 };
    for (const p of prompts(V, true).slice(0, 2)) {
      const first = await collect(s.submit(p, o));
      const next = [...p, ...first.tokens, 7, 8, 9];
      let cached = 0;
      assert.deepEqual(await collect(s.submit(next, { ...o, onCached: (n) => (cached = n) })), await collect(generate(target, next, o)));
      // a recurrent state is kept only where a pass ends on a block boundary: fewer of them when passes verify several tokens
      assert.ok(cached >= (target === dense ? 48 : 16), `${cached} tokens from the cache`);
    }
    const st = s.stats.speculation!;
    assert.ok(st.accepted > 0 && st.accepted < st.proposed, `${st.accepted} of ${st.proposed} kept`);
  }
});

test('stop tokens and max_tokens end a speculative sequence where they end a plain one', async () => {
  const p = prompts(5000)[1]!;
  const plain = await collect(generate(dense, p, { ...OPTS, max_tokens: 30 }));
  for (const o of [
    { ...OPTS, stop_tokens: [plain.tokens[7]!] },
    { ...OPTS, max_tokens: 9 },
  ]) {
    const want = await collect(generate(dense, p, o));
    for (const spec of [{ method: 'ngram' }, { method: 'draft', model: dense, pMin: 0 }] as Speculation[]) assert.deepEqual(await collect(generate(dense, p, o, spec)), want);
  }
});

test('sampled: with the target as its own draft every proposal is kept (p = q); a seed reproduces the output', async () => {
  const p = prompts(5000)[2]!;
  const o = { temperature: 0.9, top_k: 40, seed: 11, max_tokens: 30 };
  const s = new Scheduler(dense, 256, 2, 0, { method: 'draft', model: dense, pMin: 0 });
  const [a, b] = await Promise.all([collect(s.submit(p, o)), collect(s.submit(p, o))]);
  assert.deepEqual(a.tokens, b.tokens);
  const st = s.stats.speculation!;
  assert.ok(st.proposed > 0 && st.accepted === st.proposed, `${st.accepted} of ${st.proposed}`);
});

/** A random target distribution over a small vocabulary, as the sampler builds it. */
function randomChoice(r: () => number, V: number, temperature: number): Choice {
  return distribution(
    Float32Array.from({ length: V }, () => 4 * r() - 2),
    { temperature, top_k: V - 1 },
    { prompt: [], generated: [] },
  );
}

test("rejection sampling: the output distribution is exactly the target's (draft distributions and point-mass proposals)", () => {
  const r = rng(5);
  const prob = (c: Choice, id: number) => {
    const j = c.ids.indexOf(id);
    return j < 0 ? 0 : c.weights[j]! / c.sum;
  };
  for (let trial = 0; trial < 50; trial++) {
    const V = 6,
      p = randomChoice(r, V, 0.5 + r()),
      q = randomChoice(r, V, 0.5 + r());
    // out(x) = sum over t of q(t) [a(t) [x = t] + (1 - a(t)) residual(x)]
    const res = residual(p, q),
      out = new Float64Array(V);
    for (const t of q.ids) {
      const a = acceptance(p, t, q);
      out[t] += prob(q, t) * a;
      for (let x = 0; x < V; x++) out[x] += prob(q, t) * (1 - a) * prob(res, x);
    }
    for (let x = 0; x < V; x++) assert.ok(Math.abs(out[x]! - prob(p, x)) < 1e-12, `draft: token ${x}: ${out[x]} vs ${prob(p, x)}`);
    // a point mass at any t (n-gram): out(x) = a(t) [x = t] + (1 - a(t)) residual_t(x)
    for (let t = 0; t < V; t++) {
      const a = acceptance(p, t, undefined),
        rt = residual(p, { ids: [t], weights: [1], sum: 1, point: true });
      for (let x = 0; x < V; x++) {
        const o = (x === t ? a : 0) + (1 - a) * prob(rt, x);
        assert.ok(Math.abs(o - prob(p, x)) < 1e-12, `point mass at ${t}: token ${x}`);
      }
    }
  }
  // greedy: a point-mass target keeps exactly its argmax, with no draw
  const g = distribution(Float32Array.of(0.1, 2, 0.3), { temperature: 0 }, { prompt: [], generated: [] });
  assert.deepEqual(verifyToken(g, 1, undefined, new Rng(1)), { token: 1, accepted: true });
  assert.deepEqual(verifyToken(g, 2, undefined, new Rng(1)), { token: 1, accepted: false });
});

test('rejection sampling, drawn: 200,000 verified draws follow the target (chi-square, fixed seed)', () => {
  const r = rng(9),
    V = 5,
    p = randomChoice(r, V, 1),
    q = randomChoice(r, V, 1);
  const rand = new Rng(3),
    counts = new Float64Array(V),
    N = 200_000;
  const proposal = () => {
    let u = rand.next() * q.sum;
    for (let j = 0; j < q.ids.length; j++) {
      u -= q.weights[j]!;
      if (u < 0) return q.ids[j]!;
    }
    return q.ids[q.ids.length - 1]!;
  };
  let kept = 0;
  for (let i = 0; i < N; i++) {
    const v = verifyToken(p, proposal(), q, rand);
    counts[v.token]++;
    if (v.accepted) kept++;
  }
  let chi = 0;
  for (let x = 0; x < V; x++) {
    const e = (N * (p.weights[p.ids.indexOf(x)] ?? 0)) / p.sum;
    if (e > 0) chi += (counts[x]! - e) ** 2 / e;
  }
  assert.ok(chi < 30, `chi-square ${chi.toFixed(1)} over ${V - 1} degrees of freedom`); // p < 1e-5 under the null
  assert.ok(kept > 0 && kept < N);
});

test('n-gram proposals: what followed the last match, a loop continued whole', () => {
  assert.deepEqual(ngramProposal([1, 2, 3, 4, 9, 9, 1, 2, 3], 3), [4, 9, 9]);
  assert.deepEqual(ngramProposal([5, 6, 5, 6], 5), [5, 6, 5, 6, 5]);
  assert.deepEqual(ngramProposal([1, 2, 3], 4), []);
  assert.deepEqual(ngramProposal([7, 1, 8, 1], 2), [8, 1]);
});

test('a JSON-schema request with speculation validates and matches the plain answer; the library and the engine thread take the options', async () => {
  const SCHEMA = { type: 'object', properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer' } }, required: ['name', 'age'] };
  const plain = openChatModel(chatModelDir(), 'q', { ...quiet, cacheMem: 0 });
  const spec = openChatModel(chatModelDir(), 'q', { ...quiet, cacheMem: 0, spec: { method: 'ngram', max: 8 } });
  const ids = plain.tokenizer.encode('<|im_start|>user\nA person?<|im_end|>\n<|im_start|>assistant\n');
  const run = (cm: typeof plain) =>
    collect(cm.scheduler.submit(ids, { temperature: 0, max_tokens: 60, constraint: jsonConstraint(cm.tokenizer, { type: 'json_schema', schema: SCHEMA }, { maxTokens: 60 }) }));
  const [a, b] = [await run(plain), await run(spec)];
  assert.deepEqual(b, a);
  const obj = JSON.parse(plain.tokenizer.decode(b.tokens));
  assert.deepEqual(Object.keys(obj), ['name', 'age']);
  assert.ok(spec.scheduler.stats.speculation!.proposed > 0);
  const threaded = await openChatModelThreaded(chatModelDir(), 'q', { backend: 'wasm', threads: '2', cacheMem: 0, spec: { method: 'draft', draft: chatModelDir(), pMin: 0 } });
  try {
    const p = prompts(5000)[0]!;
    assert.deepEqual(await collect(threaded.scheduler.submit(p, OPTS)), await collect(generate(dense, p, OPTS)));
    const { proposed, accepted } = threaded.scheduler.stats.speculation!;
    assert.equal(accepted, proposed);
    // /metrics reports the engine thread's speculation counters
    const text = new Metrics().render(threaded.scheduler);
    assert.ok(proposed > 0);
    assert.match(text, new RegExp(`^qwen_ts_spec_draft_tokens_total ${proposed}$`, 'm'));
    assert.match(text, new RegExp(`^qwen_ts_spec_accepted_tokens_total ${accepted}$`, 'm'));
    assert.match(text, /^qwen_ts_spec_acceptance_rate 1$/m);
  } finally {
    await threaded.close();
  }
});

test('bad input: a draft with another vocabulary, --spec mtp without MTP heads, contradictory flags: one-line errors', () => {
  const target = fixtureDir('models/qwen3-tiny-tied');
  const other = path.join(Q35, 'model-f32.gguf');
  expectError(() => openChatModel(target, 'q', { spec: { method: 'draft', draft: other } }), new RegExp(`^--draft ${other}: its vocabulary is not ${target}'s \\(305 tokens against 263\\)`));
  // the same size, two token strings swapped
  const swapped = tmpDir();
  for (const f of ['config.json', 'model.safetensors', 'tokenizer_config.json']) fs.copyFileSync(path.join(target, f), path.join(swapped, f));
  const tj = JSON.parse(fs.readFileSync(path.join(target, 'tokenizer.json'), 'utf8'));
  const [a, b] = Object.keys(tj.model.vocab).filter((k) => tj.model.vocab[k] === 100 || tj.model.vocab[k] === 101);
  [tj.model.vocab[a!], tj.model.vocab[b!]] = [tj.model.vocab[b!], tj.model.vocab[a!]];
  fs.writeFileSync(path.join(swapped, 'tokenizer.json'), JSON.stringify(tj));
  expectError(() => openChatModel(target, 'q', { spec: { method: 'draft', draft: swapped } }), /^--draft .*: its vocabulary is not .*qwen3-tiny-tied's \(token 100 is "e" there, "d" in the target\)/);
  expectError(() => openChatModel(target, 'q', { spec: { method: 'mtp' } }), /^--spec mtp: .*qwen3-tiny-tied has no MTP heads/);
  expectError(() => openChatModel(target, 'q', { spec: { method: 'ngram', max: 0 } }), /^--draft-max must be an integer from 1 to 32, got 0/);
  const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  for (const [args, re] of [
    [['--spec', 'ngram', '--draft', target], /^qwen-ts run: --draft and --spec ngram contradict each other/],
    [['--spec', 'eagle'], /^qwen-ts run: --spec must be ngram or mtp/],
    [['--draft-max', '4'], /^qwen-ts run: --draft-max needs --draft MODEL or --spec ngram/],
    [['--spec', 'ngram', '--draft-p-min', '0.5'], /^qwen-ts run: --draft-p-min applies to a draft model, not to --spec ngram/],
    [['--draft', other], /^qwen-ts run: --draft .*model-f32.gguf: its vocabulary is not/],
  ] as const) {
    const r = spawnSync(process.execPath, [cli, 'run', target, 'Hi', '--max-tokens', '2', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const ok = spawnSync(process.execPath, [cli, 'run', target, 'Hi', '--max-tokens', '6', '--temperature', '0', '--spec', 'ngram'], { encoding: 'utf8' });
  const plain = spawnSync(process.execPath, [cli, 'run', target, 'Hi', '--max-tokens', '6', '--temperature', '0'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, plain.stdout);
});
