// Qwen3-Next (qwen3_next / GGUF qwen3next): logits against llama.cpp's on the tiny fixture (as
// qwen35moe-tiny: 8 routed experts top-3 + a shared expert, nk 2 / nv 4, but the DeltaNet's fused
// in_proj_qkvz / in_proj_ba (GGUF: attn_qkv + attn_gate, ssm_ba) and grouped V-head order in every
// file, plain NEOX partial RoPE) from the F32 and Q8_0 GGUF files and both HF layouts: one tensor
// per expert (Qwen3NextForCausalLM, as released, with its mtp.* block) and fused experts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import { fixtureDir, readF32, tmpDir } from '../helpers.js';
import { F32, hybridMoeTests, type Bounds } from './hybrid_moe_cases.js';
import { REFERENCE, loadOn } from './parity_backends.js';
import { ggufVariant } from './variants.js';

// Q8_0: llama.cpp rounds the activations inside its products to q8_0 blocks; we do on wasm too, at
// other points, and not at all on the reference backend. Measured on this file: max abs 0.017 (reference backend: f32 activations) and 0.013
// (wasm), relative RMS 0.018 / 0.014, argmax 102-105 of 109
// positions (one batch and token by token). Bounds 2.5x those; the greedy choice must agree where
// llama.cpp's top two are further apart than 0.1.
const Q8: Bounds = { atol: 0.05, rtol: 0, relRms: 0.04 };

hybridMoeTests(
  'qwen3next-tiny',
  [
    ['model-f32.gguf', 'f32', F32],
    ['.', 'f32', F32],
    ['fused', 'f32', F32],
    ['model-q8_0.gguf', 'q8_0', Q8],
  ],
  'qwen3_next',
);

// llama.cpp's older qwen3next files store the fused in_proj_qkvz as `ssm_in` (per key head
// [q, k, v, z] rows, as HF): the same weights as attn_qkv + attn_gate, so the same logits, bit for bit.
test('a qwen3next GGUF with the legacy fused ssm_in gives the logits of attn_qkv + attn_gate, bit for bit', () => {
  const dir = fixtureDir('models/qwen3next-tiny'),
    src = path.join(dir, 'model-f32.gguf');
  const legacy = ggufVariant(src, path.join(tmpDir(), 'legacy.gguf'), (_, ts) => {
    const D = 64,
      dk = 16,
      nk = 2,
      r = 2,
      row = D * 4;
    for (let il = 0; il < 3; il++) {
      const qi = ts.findIndex((t) => t.name === `blk.${il}.attn_qkv.weight`),
        zi = ts.findIndex((t) => t.name === `blk.${il}.attn_gate.weight`);
      const qkv = ts[qi]!.data as Uint8Array,
        z = ts[zi]!.data as Uint8Array;
      const rows = (a: Uint8Array, from: number, n: number) => a.subarray(from * row, (from + n) * row);
      const parts: Uint8Array[] = [];
      for (let g = 0; g < nk; g++) {
        parts.push(rows(qkv, g * dk, dk), rows(qkv, nk * dk + g * dk, dk), rows(qkv, 2 * nk * dk + g * r * dk, r * dk), rows(z, g * r * dk, r * dk));
      }
      const data = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      parts.reduce((off, p) => (data.set(p, off), off + p.length), 0);
      ts[qi] = { ...ts[qi]!, name: `blk.${il}.ssm_in.weight`, shape: [data.length / row, D], data };
      ts.splice(zi, 1);
    }
  });
  const ids = [3, 17, 250, 9, 101, 44];
  const run = (p: string) => {
    const m = loadOn(p, REFERENCE[1]);
    return Array.from(
      m.forward(
        ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
        [m.newCache(16)],
      ),
    );
  };
  assert.deepEqual(run(legacy), run(src));
});

// --quantize q8_0 at load: both HF copies (in_proj_qkvz regrouped row by row, experts stacked or
// split) give the same logits bit for bit, the F32 GGUF nearly so (its norms are 1 + w and A is
// -exp(A_log), HF's w and A_log, each rounded once in f32), all within the Q8_0 bounds of llama.cpp's
// logits on its own Q8_0 file (the same quantiser).
test('qwen3next --quantize q8_0: both HF layouts give the same logits, the GGUF nearly so, near llama.cpp on the Q8_0 file', () => {
  const dir = fixtureDir('models/qwen3next-tiny');
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')).cases[2];
  const want = readF32(path.join(dir, c.prefill_logits_q8_0_file.path));
  const logits = ['model-f32.gguf', '.', 'fused'].map((src) => {
    const m = loadModel(path.join(dir, src), { quantize: 'q8_0', onNote: () => {} });
    return m.forward(
      (c.prompt_ids as number[]).map((token, pos) => ({ token, pos, seq: 0, logits: true })),
      [m.newCache(64)],
    );
  });
  assert.deepEqual(Array.from(logits[2]!), Array.from(logits[1]!));
  assert.ok(logits[0]!.every((v, i) => Math.abs(v - logits[1]![i]!) < 1e-5));
  let d2 = 0,
    w2 = 0;
  want.forEach((w, i) => {
    d2 += (logits[0]![i]! - w) ** 2;
    w2 += w * w;
  });
  assert.ok(Math.sqrt(d2 / w2) < Q8.relRms, `relative RMS ${Math.sqrt(d2 / w2)}`);
});
