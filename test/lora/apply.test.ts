// LoRA applied without merging (src/lora/apply.ts) against the same adapter merged into the weights
// in float64 (src/lora/merge.ts), on the reference and WebAssembly backends; rows of different
// adapters and of the base model in one batch each get their own adapter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attachLora } from '../../src/lora/load.js';
import { generate } from '../../src/generate/generate.js';
import { argmax, compare, expectError, fixtureDir } from '../helpers.js';
import { REFERENCE, WASM_X3, loadOn } from '../models/parity_backends.js';
import { LORA_PROMPT } from './cases.js';
import { loadMerged, promptLogits, randomAdapter } from './util.js';

const PROMPT = LORA_PROMPT;

const logits = promptLogits;

for (const fixture of ['qwen2-tiny-tied', 'qwen3-tiny-tied']) {
  for (const [bname, make] of [REFERENCE, WASM_X3]) {
    test(`LoRA on ${fixture} (${bname}): applied = merged in float64, all seven modules, plain and rslora with a rank_pattern`, () => {
      const dir = fixtureDir(`models/${fixture}`);
      const m = loadOn(dir, make);
      const base = logits(m, PROMPT);
      const plain = randomAdapter(m.config, { r: 4, alpha: 8, seed: 3 });
      const rs = randomAdapter(m.config, { r: 8, alpha: 4, rslora: true, seed: 4, ranks: { 'model.layers.0.self_attn.v_proj': 2, 'model.layers.1.mlp.up_proj': 16 } });
      rs.name = 'rs';
      const id1 = attachLora(m, plain),
        id2 = attachLora(m, rs);
      assert.deepEqual([id1, id2], [1, 2]);
      for (const [id, a] of [
        [id1, plain],
        [id2, rs],
      ] as const) {
        const got = logits(m, PROMPT, id);
        const merged = logits(loadMerged(dir, a, make()), PROMPT);
        const c = compare(got, merged, 1e-4, 1e-4);
        assert.ok(c.ok, `${a.name}: max |diff| ${c.maxAbs}`);
        assert.ok(compare(got, base, 1e-2).maxAbs > 1e-2, 'the adapter changes the logits');
      }
      // rows of adapter 0 are the base model's, bit for bit
      assert.deepEqual(logits(m, PROMPT, 0), base);
      // one batch: a sequence per adapter and one of the base model, interleaved, = each alone
      const seqs = [
        { ids: PROMPT, adapter: 1 },
        { ids: PROMPT.slice(0, 5), adapter: 0 },
        { ids: PROMPT.slice(2), adapter: 2 },
      ];
      const caches = seqs.map(() => m.newCache(64));
      const batch = seqs.flatMap((s, seq) => s.ids.map((token, pos) => ({ token, pos, seq, logits: true, adapter: s.adapter })));
      // interleave rows of different sequences (a row's adapter travels with it)
      batch.sort((x, y) => x.pos - y.pos || x.seq - y.seq);
      const all = m.forward(batch, caches);
      const V = m.config.vocab_size;
      seqs.forEach((s, seq) => {
        const alone = logits(m, s.ids, s.adapter);
        batch.forEach((e, row) => {
          if (e.seq !== seq) return;
          const c = compare(all.subarray(row * V, (row + 1) * V), alone.subarray(e.pos * V, (e.pos + 1) * V), 1e-5, 1e-5);
          assert.ok(c.ok, `sequence ${seq} position ${e.pos}: max |diff| ${c.maxAbs}`);
        });
      });
      expectError(() => logits(m, PROMPT, 3), /batch row 0 asks for LoRA adapter 3, but 2 are loaded/);
      expectError(() => attachLora(m, plain), /already loaded/);
    });
  }
}

test('LoRA on a quantised base (Q4_K_M GGUF): applied = merged into the dequantised weights (reference backend); WebAssembly close', () => {
  const file = `${fixtureDir('models/qwen3-tiny-tied')}/model-q4_k_m.gguf`;
  const m = loadOn(file, REFERENCE[1]);
  const a = randomAdapter(m.config, { r: 4, alpha: 8, seed: 9 });
  const got = logits(m, PROMPT, attachLora(m, a));
  const merged = logits(loadMerged(file, a, REFERENCE[1]()), PROMPT);
  const c = compare(got, merged, 1e-4, 1e-4);
  assert.ok(c.ok, `max |diff| ${c.maxAbs}`);
  // the WebAssembly kernels round activations to 8 bits for K-quant products (as llama.cpp does): close, not equal
  const w = loadOn(file, WASM_X3[1]);
  const wg = logits(w, PROMPT, attachLora(w, a));
  const base = logits(w, PROMPT, 0);
  assert.ok(compare(wg, got, 0).maxAbs < compare(base, got, 0).maxAbs / 4);
});

test('generate() runs a sequence with GenerateOptions.adapter', async () => {
  const m = loadOn(fixtureDir('models/qwen3-tiny-tied'), REFERENCE[1]);
  const id = attachLora(m, randomAdapter(m.config, { r: 4, alpha: 8, amp: 0.3, seed: 5 }));
  const V = m.config.vocab_size;
  const first = async (adapter: number) => {
    for await (const s of generate(m, PROMPT, { max_tokens: 1, temperature: 0, adapter })) return s.token;
  };
  for (const adapter of [0, id]) assert.equal(await first(adapter), argmax(logits(m, PROMPT, adapter), (PROMPT.length - 1) * V, V));
  assert.notEqual(await first(0), await first(id), 'the adapter changes the greedy token');
});

test("a base_model_name_or_path hub id other than the model's is a note (the shapes fit, so it applies)", () => {
  const m = loadOn(fixtureDir('models/qwen3-tiny-tied'), REFERENCE[1]);
  const notes: string[] = [];
  const a = randomAdapter(m.config, { targets: ['q_proj'] });
  a.config.base_model_name_or_path = 'Qwen/Qwen3-8B';
  attachLora(m, { ...a, name: 'x' }, { model: '/cache/models--Qwen--Qwen3-0.6B/snapshots/0123abcd', onNote: (n) => notes.push(n) });
  attachLora(m, { ...a, name: 'y' }, { model: 'Qwen/Qwen3-8B', onNote: (n) => notes.push(n) });
  attachLora(m, { ...a, name: 'z', config: { ...a.config, base_model_name_or_path: '/home/me/base' } }, { model: 'Qwen/Qwen3-8B', onNote: (n) => notes.push(n) });
  assert.deepEqual(notes, ["LoRA adapter 'x' was trained on 'Qwen/Qwen3-8B'; this model is 'Qwen/Qwen3-0.6B' (the shapes fit, so it is applied)"]);
});
