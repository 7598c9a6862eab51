// --spec mtp: the MTP block's draft logits agree with a float64 numpy reference (scripts/mtp_ref.py,
// test/fixtures/models/mtp) on Qwen3.5, Qwen3.5-MoE and Qwen3-Next, from GGUF and HF files alike;
// greedy output with MTP proposals equals plain decoding (batched, in-process, on the engine thread,
// through the CLI, after a prefix-cache hit); sampled, every proposal is drawn from the block's
// distribution at the pair the text ends with, after accepted and rejected proposals alike; a
// checkpoint without MTP heads is a one-line error.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import type { Backend } from '../../src/backend/backend.js';
import { openChatModel, openChatModelThreaded } from '../../src/chat/engine.js';
import { generate, type GenerateOptions, type Speculation } from '../../src/generate/generate.js';
import { distribution, type Choice } from '../../src/generate/sampler.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import { Sequence } from '../../src/generate/sequence.js';
import { openSpeculation } from '../../src/generate/spec_open.js';
import { loadModel, type LoadOptions } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';
import { loadMtp, type MtpHead } from '../../src/models/mtp.js';
import { argmax, expectError, fixtureDir, readF32, ROOT } from '../helpers.js';

const wasm = new WasmBackend({ threads: 2 });
after(() => wasm.dispose());
const ref = new ReferenceBackend();
const quiet = { onNote: () => {} };
const MODELS = ['qwen35-tiny', 'qwen35moe-tiny', 'qwen3next-tiny'] as const;
const REF = fixtureDir('models/mtp');
/** the model's files: its F32 GGUF or its HF folder (the same values; Qwen3.5's in the VL layout, MoE 3.5's with fused experts) */
const file = (m: string, hf = false) => (hf ? fixtureDir(`models/${m}`) : path.join(fixtureDir(`models/${m}`), 'model-f32.gguf'));

/**
 * Teacher-forced, then chained: the target's final-norm hidden states over `tokens`, the block over
 * the pairs (h_i, tokens[i+1]) at positions 0..T-2, then `chain` drafts fed their own argmax and
 * normed output. Logits rows [T-1+chain, V], as scripts/mtp_ref.py writes them.
 */
function mtpLogits(model: CausalLM, head: MtpHead, tokens: readonly number[], chain: number): { logits: Float32Array; drafts: number[] } {
  const T = tokens.length,
    V = model.config.vocab_size,
    D = model.config.hidden_size;
  const cache = model.newCache(T + chain),
    hid = head.track(cache),
    mc = head.newCache(T + chain);
  try {
    model.forward(
      tokens.map((token, pos) => ({ token, pos, seq: 0, logits: pos === T - 1 })),
      [cache],
    );
    const rows = new Float32Array((T - 1) * D);
    for (let i = 0; i < T - 1; i++) rows.set(hid.get(i)!, i * D);
    const all = new Float32Array((T - 1 + chain) * V);
    let out = head.forward(
      tokens.slice(1).map((token, pos) => ({ token, pos, seq: 0, logits: true })),
      rows,
      [mc],
    );
    all.set(out.logits);
    const drafts = [argmax(out.logits, (T - 2) * V, V)];
    let g = out.hidden.slice((T - 2) * D);
    for (let j = 1; j <= chain; j++) {
      out = head.forward([{ token: drafts[j - 1]!, pos: T - 2 + j, seq: 0, logits: true }], g, [mc]);
      all.set(out.logits, (T - 2 + j) * V);
      drafts.push(argmax(out.logits));
      g = out.hidden.slice();
    }
    return { logits: all, drafts };
  } finally {
    head.untrack(cache);
    cache.release();
    mc.release();
  }
}

interface RefMtp {
  tokens: number[];
  chain: number;
  drafts: number[];
  shape: [number, number];
  file: string;
}
const refCase = (m: string, c: string): RefMtp => JSON.parse(fs.readFileSync(path.join(REF, `${m}.${c}.json`), 'utf8'));

/** loaded once per (model, format, backend): target and head */
const loaded = new Map<string, { model: CausalLM; head: MtpHead }>();
function open(m: string, hf: boolean, be: Backend) {
  const key = `${m}:${hf}:${be === wasm}`;
  let l = loaded.get(key);
  if (!l) {
    const model = loadModel(file(m, hf), { ...quiet, backend: be });
    loaded.set(key, (l = { model, head: loadMtp(file(m, hf), model) }));
  }
  return l;
}

test('MTP draft logits = the float64 reference, teacher-forced and chained, GGUF and HF, reference and wasm backends (|diff| <= 1e-5; observed ~6e-7)', () => {
  for (const m of MODELS)
    for (const c of ['A', 'C']) {
      const r = refCase(m, c),
        want = readF32(path.join(REF, r.file));
      const byFormat: Float32Array[] = [];
      for (const hf of [false, true])
        for (const be of [ref, wasm] as Backend[]) {
          const { model, head } = open(m, hf, be);
          const got = mtpLogits(model, head, r.tokens, r.chain);
          let worst = 0;
          for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got.logits[i]! - want[i]!));
          const what = `${m} case ${c}, ${hf ? 'HF' : 'GGUF'}, ${be.name}`;
          assert.ok(worst <= 1e-5, `${what}: max |diff| ${worst}`);
          assert.deepEqual(got.drafts, r.drafts, what);
          if (be === ref) byFormat.push(got.logits);
        }
      // GGUF (1 + w norms, tiled value heads) and HF (zero-centred norms, grouped heads) give the same block
      let d = 0;
      for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(byFormat[0]![i]! - byFormat[1]![i]!));
      assert.ok(d <= 1e-6, `${m} case ${c}: GGUF vs HF ${d}`);
    }
});

/** A run's tokens, logprobs and finish reason. */
async function run(it: AsyncGenerator<{ token: number; logprob?: number }, string>): Promise<string> {
  const out: (number | undefined)[] = [];
  let r = await it.next();
  for (; !r.done; r = await it.next()) out.push(r.value.token, r.value.logprob);
  return `${out.join(',')}|${r.value}`;
}

const GREEDY: GenerateOptions = { temperature: 0, max_tokens: 24, logprobs: true };
// under 16 tokens: the wasm DeltaNet's chunked form (16+ rows of a sequence) rounds otherwise, and the scheduler splits prompts
const prompts = (V: number) => [5, 8, 11, 14].map((n, s) => Array.from({ length: n }, (_, i) => (i * 37 * (s + 1) + 11 * s + 3) % V));

test('greedy --spec mtp = plain decoding: batched under continuous batching and in-process (Qwen3.5 dense, Qwen3.5-MoE, Qwen3-Next); the counters move', async () => {
  for (const m of MODELS) {
    const { model, head } = open(m, false, wasm);
    const ps = prompts(model.config.vocab_size);
    const want = await Promise.all(ps.map((p) => run(generate(model, p, GREEDY))));
    for (const max of [1, 3]) {
      const spec: Speculation = { method: 'mtp', head, max };
      const s = new Scheduler(model, 12, 4, 0, spec); // a 12-token budget: later prompts prefill in chunks beside decoding ones
      const first = ps.slice(0, 2).map((p) => run(s.submit(p, GREEDY)));
      await new Promise((r) => setTimeout(r, 20));
      const got = await Promise.all([...first, ...ps.slice(2).map((p) => run(s.submit(p, GREEDY)))]);
      got.forEach((g, i) => assert.equal(g, want[i], `${m}, max ${max}, prompt ${i}`));
      assert.equal(await run(generate(model, ps[3]!, GREEDY, spec)), want[3], `${m}: generate()`);
      const st = s.stats.speculation!;
      // (random weights: nearly every draft is refused, and a refusal rewinds the recurrent state, so the
      // next pass re-evaluates the kept token without proposing: drafts on about every other step)
      assert.ok(st.proposed >= (4 * GREEDY.max_tokens) / 3 && st.proposed <= 4 * max * GREEDY.max_tokens, `${m}: ${st.proposed} proposed`);
      assert.ok(st.accepted <= st.proposed);
    }
  }
});

test('sampled: each proposal is drawn from the block at the pair the text ends with, after kept and refused proposals alike; some are kept', async () => {
  const { model, head } = open('qwen35-tiny', false, ref); // the reference backend: a pass's rows do not depend on how the text is split
  const seen: { text: number[]; q: Choice; prompt: number }[] = [];
  const propose = Sequence.prototype.propose;
  Sequence.prototype.propose = function (this: Sequence, tokens: readonly number[], q: readonly (Choice | undefined)[] = []) {
    if (tokens.length) seen.push({ text: this.text(), q: q[0]!, prompt: this.prompt.length });
    propose.call(this, tokens, q);
  };
  const o: GenerateOptions = { temperature: 1.5, seed: 7, max_tokens: 30 };
  try {
    const s = new Scheduler(model, 64, 2, 0, { method: 'mtp', head, max: 3 });
    const ps = prompts(model.config.vocab_size).slice(1, 3);
    await Promise.all(ps.map((p) => run(s.submit(p, o))));
    const st = s.stats.speculation!;
    assert.ok(st.accepted > 5 && st.accepted < st.proposed, `${st.accepted} of ${st.proposed} kept`);
  } finally {
    Sequence.prototype.propose = propose;
  }
  assert.ok(seen.length > 10);
  const V = model.config.vocab_size;
  for (const { text, q, prompt } of seen) {
    const row = mtpLogits(model, head, text, 0).logits.subarray((text.length - 2) * V);
    const p = distribution(Float32Array.from(row), o, { prompt: text.slice(0, prompt), generated: text.slice(prompt) });
    const prob = (c: Choice, id: number) => c.weights[c.ids.indexOf(id)]! / c.sum;
    for (const id of p.ids) assert.ok(Math.abs(prob(p, id) - prob(q, id)) < 1e-6, `text of ${text.length}: token ${id}`);
  }
});

test('with the prefix cache: a second turn restored from it (no hidden states for its cached part) still equals plain decoding', async () => {
  const { model, head } = open('qwen35-tiny', false, ref);
  const s = new Scheduler(model, 64, 2, 1 << 26, { method: 'mtp', head });
  const p = Array.from({ length: 40 }, (_, i) => (i * 53 + 7) % 300);
  const first = await run(s.submit(p, GREEDY));
  const next = [
    ...p,
    ...first
      .split('|')[0]!
      .split(',')
      .filter((_, i) => i % 2 === 0)
      .map(Number),
    7,
    8,
    9,
  ];
  let cached = 0;
  assert.equal(await run(s.submit(next, { ...GREEDY, onCached: (n) => (cached = n) })), await run(generate(model, next, GREEDY)));
  assert.ok(cached >= 16, `${cached} tokens from the cache`);
  assert.ok(s.stats.speculation!.proposed > 0);
});

test('the library, the engine thread and the CLI run --spec mtp; a checkpoint without MTP heads is a one-line error', async () => {
  const gguf = file('qwen35-tiny');
  const local = openChatModel(gguf, 'q', { ...quiet, backend: wasm, cacheMem: 0, spec: { method: 'mtp' } });
  const p = prompts(300)[2]!;
  const plain = await run(generate(open('qwen35-tiny', false, wasm).model, p, GREEDY));
  assert.equal(await run(local.scheduler.submit(p, GREEDY)), plain);
  const threaded = await openChatModelThreaded(gguf, 'q', { backend: 'wasm', threads: '2', cacheMem: 0, spec: { method: 'mtp', max: 2 } });
  try {
    assert.equal(await run(threaded.scheduler.submit(p, GREEDY)), plain);
    assert.ok(threaded.scheduler.stats.speculation!.proposed > 0);
  } finally {
    await threaded.close();
  }
  // a Q8_0 file (the block's matrices stored Q8_0 too), an HF folder quantised as it loads (the block too), an F16 KV cache (the block's follows)
  const variants: [string, LoadOptions][] = [
    [path.join(fixtureDir('models/qwen35-tiny'), 'model-q8_0.gguf'), {}],
    [file('qwen35-tiny', true), { quantize: 'q8_0' }],
    [gguf, { cacheType: 'f16' }],
  ];
  for (const [f, o] of variants) {
    const model = loadModel(f, { ...quiet, backend: wasm, ...o });
    const spec = openSpeculation({ method: 'mtp' }, { path: f, model }, o);
    assert.equal(spec.method === 'mtp' && spec.head.newCache(8).type, model.config.kv_cache_type ?? 'f32');
    assert.equal(await run(generate(model, p, GREEDY, spec)), await run(generate(model, p, GREEDY)), f);
  }
  const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const cmd = (...extra: string[]) => spawnSync(process.execPath, [cli, 'run', gguf, 'Hi', '--max-tokens', '8', '--temperature', '0', ...extra], { encoding: 'utf8' });
  const [withMtp, without] = [cmd('--spec', 'mtp'), cmd()];
  assert.equal(withMtp.status, 0, withMtp.stderr);
  assert.equal(withMtp.stdout, without.stdout);
  for (const target of [fixtureDir('models/qwen3-tiny-tied'), path.join(fixtureDir('models/qwen35-tiny-tied'), 'model-f32.gguf')]) {
    const model = loadModel(target, quiet);
    expectError(() => openSpeculation({ method: 'mtp' }, { path: target, model }), /^--spec mtp: .* has no MTP heads \(multi-token-prediction layers: .*\); use --spec ngram or --draft MODEL$/);
  }
});
