// `qwen-ts quantize --type X` stores every tensor in the type llama.cpp's own quantiser picks for
// file type X (llama-quantize's mixes: Q6_K output, more bits for some attn_v / ffn_down, the
// fallbacks of rows that do not fill 256-value blocks), and sets general.file_type as it does. The
// expectation was written by llama.cpp (scripts/quant-mix/make_expected.mjs; PROVENANCE.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from '../../src/cli/quantize.js';
import { openGguf } from '../../src/formats/gguf.js';
import { planMix, QUANT_MIXES, type QuantMixName } from '../../src/formats/quant_mix.js';
import { capture, FIXTURES, fixtureDir, tmpDir } from '../helpers.js';

interface Expected {
  inputs: Record<string, { file: string; sha256: string; tensors: string[]; types: Record<string, { file_type: number; types: string[] }> }>;
}
const EXPECTED = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'models/quant-mix/expected.json'), 'utf8')) as Expected;
const work = tmpDir();

/** The input file as llama.cpp read it (a .gz fixture unpacked), checked to be that very file. */
function input(name: string): string {
  const e = EXPECTED.inputs[name]!;
  const file = e.file.endsWith('.gz') ? path.join(fixtureDir(path.dirname(path.join('models', e.file))), path.basename(e.file, '.gz')) : path.join(FIXTURES, 'models', e.file);
  assert.equal(createHash('sha256').update(fs.readFileSync(file)).digest('hex'), e.sha256, `${file} is the file llama.cpp quantised`);
  return file;
}

// every file type on: rows of 64 / 128 (every K-quant falls back), the all-256 skeleton (the mixes'
// own choices: 8 layers, GQA 4, untied output), Qwen3.5 (attn_qkv counts as attn_v; MTP block)
const CASES: [string, string[]][] = [
  ['qwen3-tiny-tied', Object.keys(EXPECTED.inputs['qwen3-tiny-tied']!.types)],
  ['k256-8l', Object.keys(EXPECTED.inputs['k256-8l']!.types)],
  ['qwen35-tiny', Object.keys(EXPECTED.inputs['qwen35-tiny']!.types)],
];

for (const [name, types] of CASES) {
  test(`quantize ${name}: every tensor in llama.cpp's type for ${types.join(', ')}; its general.file_type`, async () => {
    const file = input(name);
    const e = EXPECTED.inputs[name]!;
    for (const type of types) {
      const out = path.join(work, `${name}-${type}.gguf`);
      await capture(() => run([file, out, '--type', type]));
      const g = openGguf(out);
      try {
        const ours = new Map(g.tensorList.map((t) => [t.name, t.dtype as string]));
        const want = new Map(e.tensors.map((n, i) => [n, e.types[type]!.types[i]!]));
        assert.deepEqual([...ours.keys()].sort(), [...want.keys()].sort(), `${name} ${type}: the same tensors`);
        const wrong = [...want].filter(([n, t]) => ours.get(n) !== t).map(([n, t]) => `${n}: llama.cpp ${t}, ours ${ours.get(n)}`);
        assert.deepEqual(wrong, [], `${name} ${type}`);
        assert.equal(Number(g.metadata.get('general.file_type')), e.types[type]!.file_type, `${name} ${type}: general.file_type`);
      } finally {
        g.close();
      }
      fs.rmSync(out);
    }
  });
}

test('--dry-run prints the plan the file gets, and writes nothing', async () => {
  const file = input('qwen3-tiny-tied');
  const out = path.join(work, 'dry.gguf');
  const { out: text } = await capture(() => run([file, out, '--type', 'q4_k_m', '--dry-run']));
  assert.ok(!fs.existsSync(out));
  const e = EXPECTED.inputs['qwen3-tiny-tied']!;
  const want = new Map(e.tensors.map((n, i) => [n, e.types.q4_k_m!.types[i]!]));
  const lines = text
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  assert.equal(lines.length, want.size);
  for (const [n, t] of lines) assert.equal(t, want.get(n!), n);
});

test("planMix: the counters run in llama.cpp's tensor order (blk.10 after blk.9), whatever order the tensors come in", () => {
  // 16 layers: use_more_bits picks attn_v / ffn_down of layers 0, 1, 4, 7, 10, 13, 14, 15 for Q6_K in Q4_K_M
  const tensors = [];
  for (let l = 15; l >= 0; l--) tensors.push({ name: `blk.${l}.attn_v.weight`, shape: [256, 256] }, { name: `blk.${l}.ffn_down.weight`, shape: [256, 256] });
  tensors.push({ name: 'token_embd.weight', shape: [512, 256] }, { name: 'output.weight', shape: [512, 256] });
  const model = { arch: 'qwen3', blockCount: 16, gqa: 2, expertCount: 0, is70B: false };
  const types = planMix(tensors, model, 'q4_k_m');
  const more = [0, 1, 4, 7, 10, 13, 14, 15];
  for (let l = 0; l < 16; l++) {
    assert.equal(types.get(`blk.${l}.attn_v.weight`), more.includes(l) ? 'Q6_K' : 'Q4_K', `attn_v ${l}`);
    assert.equal(types.get(`blk.${l}.ffn_down.weight`), more.includes(l) ? 'Q6_K' : 'Q4_K', `ffn_down ${l}`);
  }
  assert.equal(types.get('output.weight'), 'Q6_K');
  assert.equal(types.get('token_embd.weight'), 'Q4_K'); // untied: the base type
  // Qwen2-72B (80 layers) is llama.cpp's LLM_TYPE_70B: attn_v Q4_K -> Q5_K
  assert.equal(planMix([{ name: 'blk.2.attn_v.weight', shape: [256, 256] }], { ...model, blockCount: 80, is70B: true }, 'q3_k_m').get('blk.2.attn_v.weight'), 'Q5_K');
  assert.ok(Object.keys(QUANT_MIXES).length >= 17);
  const pure: QuantMixName = 'q4_k';
  assert.equal(planMix(tensors, model, pure).get('output.weight'), 'Q4_K'); // --pure: no rules
});
