// Logits with a PEFT LoRA adapter against llama.cpp applying the same adapter (exported to GGUF
// LoRA by qwen.ts, loaded with node-llama-cpp's `lora` option) and against PEFT itself loading the
// adapter files (transformers, float64): test/fixtures/lora/PROVENANCE.md;
// then the GGUF LoRA path and the merged weights against the PEFT path.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { exportGgufLora, readGgufLora } from '../../src/lora/gguf_lora.js';
import { attachLora } from '../../src/lora/load.js';
import { readPeftAdapter } from '../../src/lora/peft.js';
import type { CausalLM } from '../../src/models/model.js';
import { compare, FIXTURES, fixtureDir, PARITY_ATOL, PARITY_RTOL, readF32, tmpDir } from '../helpers.js';
import { REFERENCE, WASM_X3, loadOn } from '../models/parity_backends.js';
import { LORA_CASES, LORA_PROMPT } from './cases.js';
import { loadMerged, promptLogits } from './util.js';

const logits = (m: CausalLM, adapter = 0) => promptLogits(m, LORA_PROMPT, adapter);

for (const c of LORA_CASES) {
  for (const [bname, make] of [REFERENCE, WASM_X3]) {
    test(`LoRA ${c.name} on ${c.model} (${bname}): logits = llama.cpp's with the adapter exported to GGUF and PEFT's; GGUF LoRA and merged weights agree`, () => {
      const gguf = path.join(fixtureDir(`models/${c.model}`), 'model-f32.gguf');
      const m = loadOn(gguf, make);
      const base = logits(m);
      const want = readF32(path.join(FIXTURES, 'lora', `${c.name}.llama.f32`));
      assert.ok(compare(base, want, 0.05).maxAbs > 0.05, 'the adapter changes llama.cpp logits (it was applied)');
      const peft = readPeftAdapter(path.join(FIXTURES, 'lora', c.name));
      const got = logits(m, attachLora(m, peft));
      const vsLlama = compare(got, want, PARITY_ATOL, PARITY_RTOL);
      assert.ok(vsLlama.ok, `vs llama.cpp: max |diff| ${vsLlama.maxAbs}`);
      // PEFT itself (transformers, float64) loading the adapter files qwen.ts wrote
      const vsPeft = compare(got, readF32(path.join(FIXTURES, 'lora', `${c.name}.peft.f32`)), PARITY_ATOL, PARITY_RTOL);
      assert.ok(vsPeft.ok, `vs PEFT: max |diff| ${vsPeft.maxAbs}`);
      // the GGUF LoRA path: exported, read back, applied
      const file = path.join(tmpDir(), 'a.gguf');
      exportGgufLora(peft, file, m.config.model_type);
      const g = readGgufLora(file);
      assert.equal(g.modules.length, peft.modules.length);
      const viaGguf = compare(logits(m, attachLora(m, g)), got, 1e-5, 1e-5);
      assert.ok(viaGguf.ok, `GGUF LoRA vs PEFT: max |diff| ${viaGguf.maxAbs}`);
      // merged into the weights (f32, float64 sums)
      const merged = loadMerged(gguf, peft, make());
      const vsMerged = compare(logits(merged), got, 1e-4, 1e-4);
      assert.ok(vsMerged.ok, `merged vs applied: max |diff| ${vsMerged.maxAbs}`);
    });
  }
}

for (const [bname, make] of [REFERENCE, WASM_X3]) {
  test(`an adapter made and saved by PEFT itself (layers_to_transform, rank_pattern, alpha_pattern) reads and gives PEFT's logits (${bname})`, () => {
    const m = loadOn(fixtureDir('models/qwen3-tiny-tied'), make);
    const a = readPeftAdapter(path.join(FIXTURES, 'lora', 'peft-made-qwen3'));
    assert.equal(a.modules.length, 7);
    assert.ok(a.modules.every((x) => x.layer === 1));
    assert.equal(a.modules.find((x) => x.target === 'down_proj')!.r, 2);
    assert.equal(a.modules.find((x) => x.target === 'q_proj')!.scale, 3 / 4);
    const c = compare(logits(m, attachLora(m, a)), readF32(path.join(FIXTURES, 'lora', 'peft-made-qwen3.peft.f32')), PARITY_ATOL, PARITY_RTOL);
    assert.ok(c.ok, `vs PEFT: max |diff| ${c.maxAbs}`);
  });
}
