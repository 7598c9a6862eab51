#!/usr/bin/env node
// Writes test/fixtures/lora: random PEFT LoRA adapters for the tiny qwen2 / qwen3 fixtures (all
// seven modules; plain, and rslora with a rank_pattern), and llama.cpp's logits for a prompt with
// each adapter exported to GGUF LoRA by qwen.ts and loaded through node-llama-cpp's `lora` context
// option onto the fixture's model-f32.gguf. Run once after `npm run build`; the tests read the
// committed files and need neither llama.cpp nor this script.
// usage: node scripts/lora-fixtures.mjs      (installs node-llama-cpp into .peer/ on first use)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { ensurePeer, PEER } = await dist('bench/peer_common.js');
const { writePeftAdapter, readPeftAdapter } = await dist('src/lora/peft.js');
const { exportGgufLora } = await dist('src/lora/gguf_lora.js');
const { openModelFiles } = await dist('src/models/load.js');
const { randomAdapter } = await dist('test/lora/util.js');
const { LORA_CASES, LORA_PROMPT } = await dist('test/lora/cases.js');

ensurePeer();
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(PEER, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href);
const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, maxThreads: 0, logLevel: LlamaLogLevel.warn });
const OUT = path.join(ROOT, 'test', 'fixtures', 'lora');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lora-fixtures-'));
const provenance = [];
for (const c of LORA_CASES) {
  const modelDir = path.join(ROOT, 'test', 'fixtures', 'models', c.model);
  const { config, source } = openModelFiles(modelDir);
  source.close();
  const dir = path.join(OUT, c.name);
  writePeftAdapter(dir, { ...randomAdapter(config, c.options), name: c.name });
  const gguf = path.join(tmp, `${c.name}.gguf`);
  exportGgufLora(readPeftAdapter(dir), gguf, config.model_type);
  const model = await llama.loadModel({ modelPath: path.join(modelDir, 'model-f32.gguf'), gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: 64,
    batchSize: 64,
    sequences: 1,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    lora: { adapters: [{ filePath: gguf }] },
    ignoreMemorySafetyChecks: true,
  });
  const seq = ctx.getSequence();
  const want = { logits: true, token: true, options: { temperature: 0 } };
  const res = await seq.controlledEvaluate(LORA_PROMPT.map((t) => [t, { generateNext: want }]));
  const V = config.vocab_size;
  const out = new Float32Array(LORA_PROMPT.length * V);
  res.forEach((r, i) => {
    for (const [tok, v] of r.next.logits) out[i * V + tok] = v;
  });
  fs.writeFileSync(path.join(OUT, `${c.name}.llama.f32`), out);
  await ctx.dispose();
  await model.dispose();
  provenance.push(
    `- ${c.name}/ (PEFT adapter for models/${c.model}: ${JSON.stringify(c.options)}), ${c.name}.llama.f32: llama.cpp ${llama.llamaCppRelease?.release ?? '?'} (node-llama-cpp ${JSON.parse(fs.readFileSync(path.join(PEER, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version}) logits [${LORA_PROMPT.length}, ${V}] at every position of ${JSON.stringify(LORA_PROMPT)}, model-f32.gguf + the adapter exported by exportGgufLora, 1 thread, f32 KV cache, flash attention off`,
  );
}
fs.writeFileSync(
  path.join(OUT, 'PROVENANCE.md'),
  `# LoRA fixtures\n\nWritten by \`node scripts/lora-fixtures.mjs\` (after \`npm run build\`); random adapters from test/lora/util.ts's randomAdapter with the cases of test/lora/cases.ts; then \`python3 scripts/lora-peft-logits.py\` appends PEFT's own logits (*.peft.f32).\n\n${provenance.join('\n')}\n`,
);
fs.rmSync(tmp, { recursive: true, force: true });
console.log(`wrote ${LORA_CASES.length} adapters and their llama.cpp logits to ${path.relative(ROOT, OUT)}`);
