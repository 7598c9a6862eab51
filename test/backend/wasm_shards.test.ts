// A model spread over several WebAssembly memories (shards) computes bit-for-bit what it computes in
// one: tiny shard budgets put each layer (or each pair of layers) of the fixture models in a memory
// of its own, and prefill, decode through the KV cache, chunked prefill and batched sequences
// (Qwen3.5's recurrent layers too) are compared with the one-memory run and with llama.cpp's
// logits. Then memories too small for the caches: KV storage spills into other memories.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WasmBackend, type WasmBackendOptions } from '../../src/backend/wasm.js';
import { HEAD } from '../../src/backend/backend.js';
import { loadModel, openModelFiles } from '../../src/models/load.js';
import type { BatchEntry, KvCache } from '../../src/models/kv_cache.js';
import type { CausalLM } from '../../src/models/model.js';
import { compare, fixtureDir, PARITY_ATOL, PARITY_RTOL, readF32, type RefCase, rng, sameBits } from '../helpers.js';

const ATOL = PARITY_ATOL,
  RTOL = PARITY_RTOL;
type Case = RefCase;

/** Stored bytes of layer `l`'s tensors. */
function storedBytes(src: string, l: number): number {
  const { source } = openModelFiles(src);
  try {
    return [...source.tensors.values()].filter((t) => new RegExp(`^(blk|model\\.layers)\\.${l}\\.`).test(t.name)).reduce((n, t) => n + t.byteLength, 0);
  } finally {
    source.close();
  }
}

const made: WasmBackend[] = [];
after(() => made.forEach((b) => b.dispose()));
function load(src: string, opts: WasmBackendOptions): { m: CausalLM; be: WasmBackend } {
  const be = new WasmBackend({ threads: 3, grain: 1e-9, spinMs: 0.05, ...opts });
  made.push(be);
  return { m: loadModel(src, { backend: be, onNote: () => {} }), be };
}

/** Every logits row of a script of passes (copied out: a pass's logits live until the next). */
type Script = (m: CausalLM) => Float32Array[];
const run = (m: CausalLM, passes: (caches: KvCache[]) => [BatchEntry[], KvCache[]][], nSeq: number): Float32Array[] => {
  const caches = Array.from({ length: nSeq }, () => m.newCache(256));
  return passes(caches).map(([b, c]) => m.forward(b, c).slice());
};

function scripts(cases: Case[]): [string, Script][] {
  const ids = cases.map((c) => [...c.prompt_ids, ...c.greedy_generated_ids]);
  const all = (c: number, from: number, to: number, seq = c): BatchEntry[] => ids[c]!.slice(from, to).map((token, i) => ({ token, pos: from + i, seq, logits: true }));
  return [
    ['prefill', (m) => run(m, (c) => [[all(0, 0, ids[0]!.length), c]], 1)],
    ['decode token by token', (m) => run(m, (c) => ids[0]!.map((_, p) => [all(0, p, p + 1), c]), 1)],
    ['prefill in chunks of 5', (m) => run(m, (c) => Array.from({ length: Math.ceil(ids[1]!.length / 5) }, (_, i) => [all(1, 5 * i, 5 * i + 5, 0), c]), 1)],
    [
      'two sequences, interleaved prefill then batched decode',
      (m) =>
        run(
          m,
          (c) => {
            const [a, b] = [cases[0]!.prompt_ids.length, cases[1]!.prompt_ids.length];
            const first: BatchEntry[] = [];
            for (let i = 0; i < Math.max(a, b); i++) first.push(...(i < a ? all(0, i, i + 1) : []), ...(i < b ? all(1, i, i + 1) : []));
            const passes: [BatchEntry[], KvCache[]][] = [[first, c]];
            for (let i = 0; i < 6; i++) passes.push([[...all(0, a + i, a + i + 1), ...all(1, b + i, b + i + 1)], c]);
            return passes;
          },
          2,
        ),
    ],
  ];
}

const MODELS: [string, string][] = [
  ['qwen2-tiny-tied', 'model-f32.gguf'],
  ['qwen2-tiny-tied', 'model.safetensors'],
  ['qwen35-tiny', 'model-f32.gguf'],
  ['qwen35-tiny', 'model-q8_0.gguf'],
];

for (const [name, file] of MODELS) {
  const dir = fixtureDir(`models/${name}`);
  const src = file.endsWith('.gguf') ? path.join(dir, file) : dir;
  const cases: Case[] = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')).cases;
  const one = load(src, {});
  const L = one.m.config.num_hidden_layers;
  // shardBytes 1: every layer (and the head) starts a memory; layers 0 and 1's size: pairs of layers
  const perLayer = load(src, { shardBytes: 1, poison: true });
  const pairs = load(src, { shardBytes: storedBytes(src, 0) + storedBytes(src, 1) });

  test(`${name} ${file}: placement puts each layer, or each pair of layers, in a memory of its own`, () => {
    assert.equal(one.be.shards, 1);
    assert.equal(perLayer.be.shards, L + 1);
    assert.deepEqual(
      Array.from({ length: L }, (_, l) => perLayer.be.shardOfLayer(l)),
      Array.from({ length: L }, (_, l) => l),
    );
    assert.equal(perLayer.be.shardOfLayer(HEAD), L);
    assert.ok(pairs.be.shards >= 2 && pairs.be.shards <= L, `${pairs.be.shards} shards`);
    assert.equal(pairs.be.shardOfLayer(0), pairs.be.shardOfLayer(1));
    assert.notEqual(pairs.be.shardOfLayer(1), pairs.be.shardOfLayer(L > 2 ? 2 : HEAD));
  });

  for (const [what, script] of scripts(cases)) {
    test(`${name} ${file}: ${what}: logits over several memories are bit-identical to one memory's`, () => {
      const want = script(one.m);
      for (const [label, x] of [
        ['one layer a memory', perLayer],
        ['two layers a memory', pairs],
      ] as const) {
        script(x.m).forEach((l, i) => sameBits(l, want[i]!, `${label}, pass ${i}`));
      }
    });
  }

  // (the Q8_0 file's logits against llama.cpp's: qwen35.test.ts, on one memory, which these equal)
  if (!file.includes('q8_0'))
    test(`${name} ${file}: over several memories, prefill and decode still match llama.cpp`, () => {
      const V = one.m.config.vocab_size;
      for (const c of cases.slice(0, 2)) {
        const pre = perLayer.m.forward(
          c.prompt_ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
          [perLayer.m.newCache(256)],
        );
        const r = compare(pre, readF32(path.join(dir, c.prefill_logits_file.path)), ATOL, RTOL);
        assert.ok(r.ok, `case ${c.name} prefill: max abs diff ${r.maxAbs}`);
        const want = readF32(path.join(dir, c.incremental_logits_file.path));
        const cache = perLayer.m.newCache(256);
        [...c.prompt_ids, ...c.greedy_generated_ids].forEach((token, pos) => {
          const r2 = compare(perLayer.m.forward([{ token, pos, seq: 0, logits: true }], [cache]), want.subarray(pos * V, (pos + 1) * V), ATOL, RTOL);
          assert.ok(r2.ok, `case ${c.name} position ${pos}: max abs diff ${r2.maxAbs}`);
        });
      }
    });
}

test('memories too small for the KV cache: it spills into other memories, logits unchanged', () => {
  const src = path.join(fixtureDir('models/qwen2-tiny-tied'), 'model-f32.gguf');
  const one = load(src, {});
  // 3 MiB memories (1 MiB of it below the heap), a layer each: 2 sequences of 1500 positions
  // need ~1.5 MiB of keys and values per layer
  const small = load(src, { shardBytes: 1, memoryLimit: 3 * 2 ** 20 });
  const shardsAfterLoad = small.be.shards;
  const r = rng(7);
  const ids = [0, 1].map(() => Array.from({ length: 1500 }, () => Math.floor(r() * 320)));
  const go = (m: CausalLM) => {
    const caches = [m.newCache(2048), m.newCache(2048)];
    const out: Float32Array[] = [];
    for (let p = 0; p < 1500; p += 100) {
      const batch = [0, 1].flatMap((seq) => ids[seq]!.slice(p, p + 100).map((token, i) => ({ token, pos: p + i, seq, logits: i % 50 === 49 })));
      out.push(m.forward(batch, caches).slice());
    }
    return { out, caches };
  };
  const want = go(one.m).out;
  const got = go(small.m);
  got.out.forEach((l, i) => sameBits(l, want[i]!, `pass ${i}`));
  assert.ok(small.be.shards > shardsAfterLoad, `no memory was added for the caches (${small.be.shards})`);
  const moved = [0, 1].some((l) => got.caches.some((c) => small.be.shardOf(c.k[l]!) !== small.be.shardOfLayer(l) || small.be.shardOf(c.v[l]!) !== small.be.shardOfLayer(l)));
  assert.ok(moved, "every cache stayed in its layer's memory");
});

// The ops themselves with operands in different memories, against one memory, bit for bit:
// products (one weight, several weights in two memories), attention over caches in two memories,
// elementwise ops and copies across; and a weight that does not fit its memory going to a new one.
test("ops with operands in different memories give one memory's results, bit for bit", () => {
  let seed = 99;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const data = (n: number) => Float32Array.from({ length: n }, () => rnd());
  const N = 40,
    K = 64,
    T = 3,
    Hq = 4,
    Hkv = 2,
    Dh = 16,
    S = 7;
  const w1 = data(N * K),
    w2 = data(N * K),
    x = data(T * K),
    q = data(T * Hq * Dh);
  const kv = [0, 1, 2].map(() => [data(S * Hkv * Dh), data(S * Hkv * Dh)]);
  const results = (be: WasmBackend, spread: boolean): Float32Array[] => {
    const put = (a: Float32Array) => {
      const b = be.alloc(a.length);
      b.set(a);
      return b;
    };
    const weight = (src: Float32Array) => {
      const w = be.weight('F32', [N, K]);
      w.bytes.set(new Uint8Array(src.buffer));
      return w;
    };
    be.place(0, spread ? 1 : 0);
    const W1 = weight(w1),
      kv0 = kv.slice(0, 2).map(([k, v]) => [put(k!), put(v!)]);
    be.place(1, spread ? 1 : 0);
    const W2 = weight(w2),
      kv1 = kv.slice(2).map(([k, v]) => [put(k!), put(v!)]);
    const X = put(x),
      Q = put(q);
    if (spread) {
      assert.equal(be.shards, 2);
      assert.deepEqual([be.shardOf(W1.bytes), be.shardOf(kv0[0]![0]!), be.shardOf(W2.bytes), be.shardOf(X)], [0, 0, 1, 1]);
    }
    const o1 = be.alloc(T * N),
      o2 = be.alloc(T * N),
      o3 = be.alloc(T * N),
      o4 = be.alloc(T * N);
    be.matmul(o1, X, W1, T); // x from memory 1 into memory 0, the output back
    be.matmulMany([o2, o3], X, [W1, W2], T); // weights in two memories: one product each
    be.place(0);
    const sum = be.alloc(T * N);
    be.add(sum, o1, o2, T * N); // in memory 0, from memory 1
    be.siluMul(o4, sum, o3, T * N);
    const att = be.alloc(T * Hq * Dh);
    const spans = [...kv0, ...kv1].map(([k, v], t) => ({ k: k!, v: v!, len: 5 + t }));
    be.attention(att, Q, spans, Hq, Hkv, Dh, 0.25); // rows 0, 1 in memory 0, row 2 in memory 1
    const cp = be.alloc(10);
    be.copy(cp, 2, att, 7, 8);
    return [o1, o2, o3, sum, o4, att, cp.subarray(2)].map((a) => a.slice());
  };
  const one = new WasmBackend({ threads: 3, grain: 1e-9, spinMs: 0.05 });
  const two = new WasmBackend({ threads: 3, grain: 1e-9, spinMs: 0.05, shardBytes: 1, poison: true });
  made.push(one, two);
  const want = results(one, false);
  results(two, true).forEach((a, i) => sameBits(a, want[i]!, `result ${i}`));

  // a weight larger than what is left of its memory (3 MiB, 1 MiB of it below the heap) starts another
  const small = new WasmBackend({ threads: 1, memoryLimit: 3 * 2 ** 20 });
  made.push(small);
  const a = small.weight('F32', [256, 1024]),
    b = small.weight('F32', [256, 1024]);
  assert.deepEqual([small.shardOf(a.bytes), small.shardOf(b.bytes), small.shards], [0, 1, 2]);
});
