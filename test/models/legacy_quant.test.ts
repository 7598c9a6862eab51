// qwen3-tiny-tied quantised by llama.cpp's own quantiser (test/fixtures/models/PROVENANCE.md): its
// rows are 64 or 128 wide, not multiples of 256, so llama.cpp's q4_k_m / q5_k_m mixes fall back to the
// legacy block types (Q5_0 / Q5_1, plus Q8_0), and the q4_1 / q5_0 / q5_1 files hold those types.
// Our logits against llama.cpp's on the same file, every position of both prompts. llama.cpp rounds
// the activations to q8 blocks for these products (Q8_0 for Q5_0, Q8_1 for Q4_1 / Q5_1); the wasm
// backend does too (src/kernels/q8.ts, with f32 block scales where ggml's are f16), the
// reference backend does not (rows decoded to f32), so the logits differ by that rounding and the
// order of sums (the weights themselves are byte-identical to our quantize(), checked below).
// Measured over the 137 positions of prompts A and B (reference / wasm): argmax equal q4_k_m
// 130 / 134, q5_k_m 133 / 134, q4_1 133 / 133, q5_0 134 / 134, q5_1 133 / 133 (>= 94.9%); relative
// RMS of the logits: reference 0.0198 .. 0.0204, wasm 0.0173 .. 0.0200 (on the f32 path, before
// the int8 kernels, wasm measured 0.0205 .. 0.0213); the random tiny model's logits are flat, so
// near-ties flip. Bounds: argmax >= 90%, relative RMS <= 0.1.
// QWEN_TS_PRINT=1 prints the figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../../src/formats/gguf.js';
import { quantize } from '../../src/formats/quant/index.js';
import { fixtureDir, readF32 } from '../helpers.js';
import { agreement, loadOn, REFERENCE, WASM_X3 } from './parity_backends.js';

const dir = fixtureDir('models/qwen3-tiny-tied');
const cases: { name: string; prompt_ids: number[] }[] = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')).cases;

// the matrix types each file holds (norms stay F32)
const FILES: [string, string[]][] = [
  ['q4_k_m', ['F32', 'Q5_0', 'Q8_0']],
  ['q5_k_m', ['F32', 'Q5_1', 'Q8_0']],
  ['q4_1', ['F32', 'Q4_1', 'Q8_0']],
  ['q5_0', ['F32', 'Q5_0', 'Q8_0']],
  ['q5_1', ['F32', 'Q5_1', 'Q8_0']],
];

const BACKENDS = [REFERENCE, WASM_X3];

for (const [type, types] of FILES) {
  const file = path.join(dir, `model-${type}.gguf`);
  test(`llama.cpp ${type} file of qwen3-tiny-tied holds ${types.join(', ')}`, () => {
    const g = openGguf(file);
    try {
      assert.deepEqual([...new Set(g.tensorList.map((t) => t.dtype))].sort(), [...types].sort());
    } finally {
      g.close();
    }
  });
  if (['q4_1', 'q5_0', 'q5_1'].includes(type)) {
    test(`llama.cpp ${type} file: every ${type.toUpperCase()} tensor is byte-identical to our quantize() of model-f32.gguf`, () => {
      const q = openGguf(file),
        f = openGguf(path.join(dir, 'model-f32.gguf'));
      try {
        let n = 0;
        for (const t of q.tensorList) {
          if (t.dtype !== type.toUpperCase()) continue;
          const got = new Uint8Array(t.byteLength);
          q.readInto(t.name, got);
          const src = f.tensors.get(t.name)!;
          const raw = new Uint8Array(src.byteLength);
          f.readInto(t.name, raw);
          const mine = quantize(t.dtype, new Float32Array(raw.buffer), raw.length / 4);
          assert.ok(Buffer.from(mine).equals(Buffer.from(got)), `${t.name} differs`);
          n++;
        }
        assert.equal(n, 14);
      } finally {
        q.close();
        f.close();
      }
    });
  }
  for (const [bn, backend] of BACKENDS) {
    test(`${bn}: qwen3-tiny-tied ${type} logits agree with llama.cpp on the same file`, () => {
      const m = loadOn(file, backend);
      const { same, n, rel } = agreement(m, cases, (name) => readF32(path.join(dir, `${name}.prefill_logits.${type}.f32`)));
      if (process.env.QWEN_TS_PRINT) console.log(`${bn} ${type}: argmax ${same}/${n}, relative RMS ${rel.toFixed(4)}`);
      assert.ok(same >= 0.9 * n, `argmax equal at ${same} of ${n} positions`);
      assert.ok(rel <= 0.1, `relative RMS ${rel}`);
    });
  }
}
