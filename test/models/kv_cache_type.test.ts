// KV caches stored as f16 or q8_0 (LoadOptions.cacheType, --cache-type), against the f32 cache on
// the tiny fixtures: a 40-token prompt then 40 greedy tokens (past attention's 64-row block), dense
// (Qwen3) and hybrid (Qwen3.5: its attention layers; DeltaNet states stay f32), reference and wasm
// backends. Stated tolerances, max |logit - f32 logit| over every position, relative to the f32
// logits' largest magnitude M:
//   f16:  2e-3 M   (seen: 5.6e-4 M on Qwen3, 7e-5 M on Qwen3.5)
//   q8_0: 4e-2 M   (seen: 1.6e-2 M on Qwen3, 1.6e-3 M on Qwen3.5)
// and the 40 greedy tokens are the f32 cache's. Also: memory per block (f16 half, q8_0 34/128 of
// f32, rows padded to 4 bytes), the prefix cache keeping blocks in the cache's type (restored =
// recomputed), the engine thread getting the type (serve), and the errors: head_dim not a
// multiple of 32 for q8_0, an unknown type (library and each command's flag).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { Backend, KvType } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { chat, openChatModel, openChatModelThreaded, type ChatEvent, type ChatModel } from '../../src/chat/engine.js';
import { BLOCK, PrefixCache } from '../../src/generate/prefix_cache.js';
import { loadModel } from '../../src/models/load.js';
import { argmax, chatModelDir, expectError, fixtureDir, ROOT, sameBits } from '../helpers.js';

const wasm = new WasmBackend({ threads: 2 });
after(() => wasm.dispose());
const TOL: Record<KvType, number> = { f32: 0, f16: 2e-3, q8_0: 4e-2 };
const P = 40,
  G = 40;

/** Prompt logits at every position, then G greedy steps' logits, and the tokens chosen. */
function run(fixture: string, be: Backend, cacheType: KvType): { logits: Float32Array[]; tokens: number[] } {
  const m = loadModel(fixtureDir(fixture), { backend: be, cacheType, onNote: () => {} });
  const V = m.config.vocab_size,
    c = m.newCache(P + G);
  const prompt = Array.from({ length: P }, (_, i) => (i * 37 + 11) % V);
  let l = m.forward(
    prompt.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
    [c],
  );
  const logits = [Float32Array.from(l)],
    tokens = [argmax(l.subarray((P - 1) * V))];
  for (let i = 0; i < G - 1; i++) {
    l = m.forward([{ token: tokens[i]!, pos: P + i, seq: 0, logits: true }], [c]);
    logits.push(Float32Array.from(l));
    tokens.push(argmax(l));
  }
  c.release();
  return { logits, tokens };
}

for (const fixture of ['models/qwen3-tiny-tied', 'models/qwen35-tiny-tied']) {
  for (const [name, be] of [
    ['reference', new ReferenceBackend()],
    ['wasm', wasm],
  ] as const) {
    test(`${fixture} (${name}): f16 and q8_0 KV caches stay within the stated tolerance of f32, and greedy decoding agrees for ${G} tokens`, () => {
      const base = run(fixture, be, 'f32');
      const M = Math.max(...base.logits.map((a) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0)));
      for (const type of ['f16', 'q8_0'] as KvType[]) {
        const got = run(fixture, be, type);
        let d = 0;
        got.logits.forEach((a, i) =>
          a.forEach((x, j) => {
            d = Math.max(d, Math.abs(x - base.logits[i]![j]!));
          }),
        );
        assert.ok(d <= TOL[type] * M, `${type}: max |d| ${d} > ${TOL[type]} x ${M}`);
        assert.ok(d > 0, `${type}: the cache type changed nothing`); // it really stored another type
        assert.deepEqual(got.tokens, base.tokens, type);
      }
    });
  }
}

test('memory: an f16 block takes half the f32 bytes, a q8_0 block 34/128 (rows padded to 4 bytes); the prefix cache keeps that type', () => {
  const bytes = (t: KvType) => 4 * loadModel(fixtureDir('models/qwen3-tiny-tied'), { cacheType: t }).newCache(1).rowsFloats(BLOCK);
  // 2 layers x (k, v) x 16 positions x kvDim 64
  assert.equal(bytes('f32'), 2 * 2 * 16 * 64 * 4);
  assert.equal(bytes('f16'), bytes('f32') / 2);
  assert.equal(bytes('q8_0'), 2 * 2 * 16 * 68);
  // Qwen3.5 tiny: kvDim 128, one attention layer in four; DeltaNet state is not in the blocks
  const h = loadModel(fixtureDir('models/qwen35-tiny-tied'), { cacheType: 'q8_0', onNote: () => {} }).newCache(1);
  assert.equal(4 * h.rowsFloats(BLOCK), 1 * 2 * 16 * 136);
});

test('q8_0 prefix-cache blocks restore the bytes they were taken from: continuing gives the bits of the uninterrupted run', () => {
  const m = loadModel(fixtureDir('models/qwen3-tiny-tied'), { backend: wasm, cacheType: 'q8_0' });
  const prompt = Array.from({ length: 40 }, (_, i) => (i * 13 + 5) % 256);
  const a = m.newCache(64);
  const full = Float32Array.from(
    m.forward(
      prompt.map((token, pos) => ({ token, pos, seq: 0, logits: pos >= 32 })),
      [a],
    ),
  );
  const pc = PrefixCache.for(a, 1 << 20);
  pc.insert(prompt, a);
  assert.equal(pc.stats().bytes, 2 * 4 * a.rowsFloats(BLOCK)); // two 16-token blocks, stored as q8_0
  const b = m.newCache(64);
  assert.equal(pc.restore(prompt, b).tokens, 32);
  const rest = m.forward(
    prompt.slice(32).map((token, i) => ({ token, pos: 32 + i, seq: 0, logits: true })),
    [b],
  );
  sameBits(rest, full, 'logits of positions 32..39');
});

test('Qwen3.5 chat with a q8_0 cache: the same tokens and logprobs with the prefix cache on and off', async () => {
  const opts = { backend: new ReferenceBackend(), cacheType: 'q8_0' as const, onNote: () => {} };
  const on = openChatModel(chatModelDir('qwen3.5'), 'q', opts),
    off = openChatModel(chatModelDir('qwen3.5'), 'q', { ...opts, cacheMem: 0 });
  const turn = async (cm: ChatModel, messages: unknown[]) => {
    const events: ChatEvent[] = [];
    for await (const e of chat(cm, { messages, temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 3, enable_thinking: false })) events.push(e);
    return events;
  };
  const msgs = [
    { role: 'system', content: 'You answer briefly and kindly. '.repeat(8) },
    { role: 'user', content: 'Hello there.' },
  ];
  assert.deepEqual(await turn(on, msgs), await turn(off, msgs));
  const again = [...msgs.slice(0, 1), { role: 'user', content: 'Something else?' }];
  assert.deepEqual(await turn(on, again), await turn(off, again));
  assert.equal(on.scheduler.stats.prefixHits, 1);
});

test('the engine thread (serve) gets the cache type: q8_0 on head_dim 16 fails to start naming it, f16 answers as in-process f16', async () => {
  await assert.rejects(openChatModelThreaded(chatModelDir(), 'q', { backend: 'wasm', threads: '1', cacheType: 'q8_0' }), /--cache-type q8_0 needs head_dim a multiple of 32.*head_dim is 16/);
  const msgs = [{ role: 'user', content: 'Say something.' }];
  const logprobs = async (cm: ChatModel) => {
    const lp: number[] = [];
    for await (const e of chat(cm, { messages: msgs, temperature: 0, max_tokens: 16, logprobs: true, enable_thinking: false })) if (e.kind === 'logprobs') lp.push(e.logprob);
    return lp;
  };
  const threaded = await openChatModelThreaded(chatModelDir(), 'q', { backend: 'wasm', threads: '1', cacheType: 'f16' });
  try {
    const one = new WasmBackend({ threads: 1 });
    try {
      const got = await logprobs(threaded);
      assert.deepEqual(got, await logprobs(openChatModel(chatModelDir(), 'q', { backend: one, cacheType: 'f16' })));
      assert.notDeepEqual(got, await logprobs(openChatModel(chatModelDir(), 'q', { backend: one }))); // f32 differs
    } finally {
      one.dispose();
    }
  } finally {
    await threaded.close();
  }
});

test('bad cache types: q8_0 with head_dim 16 and an unknown type are one-line errors naming the problem', () => {
  expectError(() => loadModel(fixtureDir('models/qwen2-tiny-tied'), { cacheType: 'q8_0' }), /--cache-type q8_0 needs head_dim a multiple of 32.*head_dim is 16/);
  expectError(() => loadModel(fixtureDir('models/qwen2-tiny-tied'), { cacheType: 'q4_0' as KvType }), /--cache-type must be one of f32, f16, q8_0, got 'q4_0'/);
  const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  const tiny = fixtureDir('models/qwen2-tiny-tied');
  for (const [args, re] of [
    [['logits', '--model', tiny, '--tokens', '1,2', '--cache-type', 'q4'], /^qwen-ts logits: --cache-type must be one of f32, f16, q8_0, got 'q4'$/],
    [['bench', '--model', tiny, '--cache-type', 'F8'], /^qwen-ts bench: --cache-type must be one of f32, f16, q8_0, got 'F8'$/],
    [['run', tiny, 'hi', '--cache-type', ''], /^qwen-ts run: --cache-type must be one of f32, f16, q8_0, got ''$/],
    [['serve', tiny, '--port', '0', '--cache-type', 'q8'], /^qwen-ts serve: --cache-type must be one of f32, f16, q8_0, got 'q8'$/],
    [['logits', '--model', tiny, '--tokens', '1,2', '--cache-type', 'q8_0'], /^qwen-ts logits: --cache-type q8_0 needs head_dim a multiple of 32 .*head_dim is 16; use --cache-type f16$/],
  ] as [string[], RegExp][]) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), re);
  }
  // and a good one: f16 logits within the tolerance of f32's (qwen2 tiny, head_dim 16)
  const f32 = JSON.parse(cli('logits', '--model', tiny, '--tokens', '1,2,3,4', '--backend', 'reference').stdout).logits as number[];
  const f16 = JSON.parse(cli('logits', '--model', tiny, '--tokens', '1,2,3,4', '--backend', 'reference', '--cache-type', 'f16').stdout).logits as number[];
  const M = Math.max(...f32.map(Math.abs)),
    d = Math.max(...f16.map((x, i) => Math.abs(x - f32[i]!)));
  assert.ok(d > 0 && d <= TOL.f16 * M, `f16 logits ${d} from f32's (largest ${M})`);
});
