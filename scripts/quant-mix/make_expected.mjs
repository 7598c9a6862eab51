#!/usr/bin/env node
// Writes test/fixtures/models/quant-mix/: the per-tensor types llama.cpp's own quantiser
// (llama_model_quantize, no importance matrix, node-llama-cpp 3.22.1 = llama.cpp de3ff815) gives three
// tiny inputs for every file type `qwen-ts quantize` offers, read back from the files it wrote
// (expected.json), and the third input itself (k256-8l.gguf.gz). test/cli/quantize_mix.test.ts
// checks `qwen-ts quantize` against it.
//   node scripts/quant-mix/make_expected.mjs --peer DIR     (after npx tsc -p .)
// Inputs: qwen3-tiny-tied/model-f32.gguf (rows 64 / 128: every K-quant falls back; tied embeddings),
// qwen35-tiny/model-f32.gguf (Qwen3.5 hybrid with an MTP block: attn_qkv counted as attn_v, ssm_*
// tensors; rows 128), and k256-8l: a Qwen3 skeleton whose rows are all 256 wide (hidden 256, 8 layers
// so the first / last eighth and every third layer differ, 4 heads over 1 KV head (GQA 4), untied
// output), all weights zero: the types depend only on names, shapes and metadata, and zeros gzip to
// a few KB.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const imp = (p) => import(pathToFileURL(path.join(ROOT, 'dist/src', p)).href);
const { openGguf } = await imp('formats/gguf.js');
const { writeGguf } = await imp('formats/gguf_writer.js');
const { values } = parseArgs({ options: { peer: { type: 'string', default: path.join(ROOT, '.peer') } } });
const FIX = path.join(ROOT, 'test/fixtures/models');
const OUT = path.join(FIX, 'quant-mix');
const TYPES = ['q4_k_m', 'q4_k_s', 'q5_k_m', 'q5_k_s', 'q6_k', 'q3_k_m', 'q2_k', 'iq4_xs', 'iq4_nl', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'f16', 'bf16', 'f32'];
fs.mkdirSync(OUT, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quant-mix-'));

// the k256-8l skeleton: qwen3-tiny-tied's metadata (its tokenizer, so llama.cpp loads it) with new dims
function skeleton(file) {
  const src = openGguf(path.join(FIX, 'qwen3-tiny-tied/model-f32.gguf'));
  const dims = {
    'qwen3.embedding_length': 256,
    'qwen3.feed_forward_length': 256,
    'qwen3.block_count': 8,
    'qwen3.attention.head_count': 4,
    'qwen3.attention.head_count_kv': 1,
    'qwen3.attention.key_length': 64,
    'qwen3.attention.value_length': 64,
  };
  const metadata = [...src.metadata].map(([key, value]) => ({ key, type: src.metadataTypes.get(key), value: key in dims ? dims[key] : key === 'general.name' ? 'qwen3-k256-8l-zeros' : value }));
  src.close();
  const H = 256,
    D = 64,
    V = 320;
  const t = (name, shape, dtype) => ({ name, shape, dtype, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 2)) });
  const tensors = [t('token_embd.weight', [V, H], 'F16'), t('output_norm.weight', [H], 'F32'), t('output.weight', [V, H], 'F16')];
  for (let l = 0; l < 8; l++) {
    const b = `blk.${l}.`;
    tensors.push(
      t(b + 'attn_norm.weight', [H], 'F32'),
      t(b + 'attn_q.weight', [4 * D, H], 'F16'),
      t(b + 'attn_k.weight', [D, H], 'F16'),
      t(b + 'attn_v.weight', [D, H], 'F16'),
      t(b + 'attn_q_norm.weight', [D], 'F32'),
      t(b + 'attn_k_norm.weight', [D], 'F32'),
      t(b + 'attn_output.weight', [H, 4 * D], 'F16'),
      t(b + 'ffn_norm.weight', [H], 'F32'),
      t(b + 'ffn_gate.weight', [256, H], 'F16'),
      t(b + 'ffn_up.weight', [256, H], 'F16'),
      t(b + 'ffn_down.weight', [H, 256], 'F16'),
    );
  }
  writeGguf(file, { metadata, tensors });
}

const sha = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const k256 = path.join(tmp, 'k256-8l.gguf');
skeleton(k256);
fs.writeFileSync(path.join(OUT, 'k256-8l.gguf.gz'), zlib.gzipSync(fs.readFileSync(k256), { level: 9 }));
const inputs = { 'qwen3-tiny-tied': path.join(FIX, 'qwen3-tiny-tied/model-f32.gguf'), 'qwen35-tiny': path.join(FIX, 'qwen35-tiny/model-f32.gguf'), 'k256-8l': k256 };
const expected = {
  about:
    "Per-tensor types written by llama.cpp's llama_model_quantize (no importance matrix; node-llama-cpp 3.22.1, llama.cpp de3ff815) for each file type, read back from its output files; `types[ftype].types[i]` is the type of `tensors[i]` (llama.cpp's tensor order). Made by scripts/quant-mix/make_expected.mjs.",
  inputs: {},
};
for (const [name, file] of Object.entries(inputs)) {
  const entry = { file: name === 'k256-8l' ? 'quant-mix/k256-8l.gguf.gz' : path.relative(FIX, file), sha256: sha(file), tensors: null, types: {} };
  for (const type of TYPES) {
    const out = path.join(tmp, 'out.gguf');
    execFileSync('python3', [path.join(ROOT, 'scripts/quant-mix/llama_quantize.py'), file, out, type, '--peer', values.peer, '--threads', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const g = openGguf(out);
    const names = g.tensorList.map((t) => t.name);
    entry.tensors ??= names;
    if (names.join() !== entry.tensors.join()) throw new Error(`${name} ${type}: tensor order changed`);
    entry.types[type] = { file_type: Number(g.metadata.get('general.file_type')), types: g.tensorList.map((t) => t.dtype) };
    g.close();
    fs.rmSync(out);
  }
  expected.inputs[name] = entry;
  console.log(`${name}: ${entry.tensors.length} tensors, ${TYPES.length} types`);
}
// one line per type list, so the file diffs readably
const json = JSON.stringify(expected, null, 1).replace(
  /\[\n\s+("[^\n]*",?\n\s+)*"[^\n]*"\n\s+\]/g,
  (m) =>
    `[${m
      .slice(1, -1)
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean)
      .join(' ')}]`,
);
fs.writeFileSync(path.join(OUT, 'expected.json'), json + '\n');
fs.rmSync(tmp, { recursive: true, force: true });
