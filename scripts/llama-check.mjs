#!/usr/bin/env node
// Does llama.cpp load the GGUF files `qwen-ts quantize` writes, and agree with qwen.ts on them?
// Installs node-llama-cpp (llama.cpp's prebuilt CPU binary, from npm) into .peer/ on first use,
// converts the tiny fixture models (HF folders) to GGUF in each type, and compares llama.cpp's
// logits with qwen.ts's on the same file: argmax at every prompt position, and for F32 every logit.
// usage: npm run check:llama            (needs the npm registry the first time, ~85 MB)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEER = path.join(ROOT, '.peer');
const VERSION = '3.22.1';

function installPeer() {
  const pkg = path.join(PEER, 'node_modules', 'node-llama-cpp', 'package.json');
  if (fs.existsSync(pkg)) return pkg;
  fs.mkdirSync(PEER, { recursive: true });
  fs.writeFileSync(
    path.join(PEER, 'package.json'),
    JSON.stringify(
      {
        name: 'qwen-ts-peer',
        private: true,
        type: 'module',
        dependencies: { 'node-llama-cpp': VERSION, '@node-llama-cpp/linux-x64': VERSION },
      },
      null,
      2,
    ),
  );
  // omit=optional: skip the CUDA/Vulkan/other-platform binaries (725 MB -> 85 MB)
  fs.writeFileSync(path.join(PEER, '.npmrc'), 'omit=optional\n');
  process.stderr.write(`installing node-llama-cpp ${VERSION} into ${PEER} ...\n`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: PEER,
    stdio: 'inherit',
    env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
  });
  return pkg;
}

const pkgPath = installPeer();
const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
const entry = pkg.exports?.['.']?.import ?? pkg.exports?.['.']?.default ?? pkg.main;
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(path.dirname(pkgPath), typeof entry === 'string' ? entry : entry.default)).href);
const { main } = await import(pathToFileURL(path.join(ROOT, 'dist/src/cli/main.js')).href);
const { loadModel } = await import(pathToFileURL(path.join(ROOT, 'dist/src/models/load.js')).href);

const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, maxThreads: 0, logLevel: LlamaLogLevel.error });

async function llamaLogits(file, tokens) {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: 256,
    batchSize: 256,
    sequences: 1,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    ignoreMemorySafetyChecks: true,
  });
  const want = { logits: true, token: true, options: { temperature: 0 } };
  const res = await ctx.getSequence().controlledEvaluate(tokens.map((t) => [t, { generateNext: want }]));
  const rows = res.map((r) => {
    const d = new Float32Array(r.next.logits.size);
    for (const [id, v] of r.next.logits) d[id] = v;
    return d;
  });
  await ctx.dispose();
  await model.dispose();
  return rows;
}

const argmax = (a) => a.reduce((b, v, i) => (v > a[b] ? i : b), 0);

/** Our logits and llama.cpp's on GGUF file `out` for a prompt: argmax agreement, largest difference, largest logit. */
async function compareOn(ours, out, ids) {
  const V = ours.config.vocab_size;
  const mine = ours.forward(
    ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
    [ours.newCache(256)],
  );
  const theirs = await llamaLogits(out, ids);
  let same = 0,
    maxAbs = 0,
    largest = 0;
  theirs.forEach((row, p) => {
    const m = mine.subarray(p * V, (p + 1) * V);
    if (argmax(row) === argmax(m)) same++;
    for (let i = 0; i < V; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(row[i] - m[i]));
      largest = Math.max(largest, Math.abs(row[i]));
    }
  });
  return { same, maxAbs, largest };
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qwen-ts-llama-'));
let passed = 0,
  failed = 0;
for (const name of ['qwen2-tiny-tied', 'qwen3-tiny-tied']) {
  const dir = path.join(ROOT, 'test/fixtures/models', name);
  const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
  // q4_k_m / iq4_xs: llama.cpp's mixes; rows of 64 / 128 take their fallbacks (Q5_0, Q8_0, IQ4_NL)
  for (const type of ['f32', 'f16', 'q8_0', 'q4_0', 'q4_k_m', 'iq4_xs']) {
    const out = path.join(tmp, `${name}-${type}.gguf`);
    if ((await main(['quantize', dir, out, '--type', type])) !== 0) {
      failed++;
      continue;
    }
    const ours = loadModel(out);
    for (const c of ref.cases) {
      const ids = c.prompt_ids;
      const { same, maxAbs } = await compareOn(ours, out, ids);
      // F32: same weights as the reference, so every logit must agree; quantised types: llama.cpp also
      // rounds activations (to f16 / q8_0 blocks), so compare the argmax, allowing near-ties.
      const ok = type === 'f32' ? maxAbs <= 1e-3 && same === ids.length : same >= Math.ceil(ids.length * 0.9);
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} ${type.padEnd(6)} case ${c.name}: argmax agrees at ${same}/${ids.length} positions, max |logit diff| ${maxAbs.toFixed(5)}`);
      ok ? passed++ : failed++;
    }
  }
}
// The mixes' own K-quant and IQ4 types need rows of 256: qwen3-tiny-k256 (its Q5_K file, requantised
// by qwen.ts as llama.cpp would quantise the float model) written as q4_k_m (Q4_K + Q6_K), q3_k_m
// (Q3_K, Q4_K, Q5_K, Q6_K) and iq4_xs (IQ4_XS + Q6_K) must load in llama.cpp and give our argmax.
{
  const ref = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/models/qwen3-tiny-tied/reference.json'), 'utf8'));
  const src = path.join(ROOT, 'test/fixtures/models/qwen3-tiny-k256/model-q5_k_s-pure.gguf');
  for (const type of ['q4_k_m', 'q3_k_m', 'iq4_xs']) {
    const out = path.join(tmp, `qwen3-tiny-k256-${type}.gguf`);
    if ((await main(['quantize', src, out, '--type', type])) !== 0) {
      failed++;
      continue;
    }
    const ours = loadModel(out);
    for (const c of ref.cases) {
      const ids = c.prompt_ids;
      const { same, maxAbs } = await compareOn(ours, out, ids);
      const ok = same >= Math.ceil(ids.length * 0.9);
      console.log(`${ok ? 'ok  ' : 'FAIL'} qwen3-tiny-k256 ${type.padEnd(6)} case ${c.name}: argmax agrees at ${same}/${ids.length} positions, max |logit diff| ${maxAbs.toFixed(5)}`);
      ok ? passed++ : failed++;
    }
  }
}
// Qwen3.5 (hybrid DeltaNet): our HF -> GGUF conversion of the real-vocabulary tiny model with the
// official tokenizer (its values rewritten as llama.cpp's converter does) must load in llama.cpp
// and give our logits on the prompts of its reference cases.
{
  const { chatModelDir } = await import(pathToFileURL(path.join(ROOT, 'dist/test/helpers.js')).href);
  const dir = chatModelDir('qwen3.5');
  const ref = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/models/qwen35-tiny-realvocab/reference.json'), 'utf8'));
  for (const type of ['f32', 'q8_0']) {
    const out = path.join(tmp, `qwen35-tiny-realvocab-${type}.gguf`);
    if ((await main(['quantize', dir, out, '--type', type])) !== 0) {
      failed++;
      continue;
    }
    const ours = loadModel(out);
    for (const c of ref.cases) {
      const { maxAbs, largest: worst } = await compareOn(ours, out, c.prompt_ids);
      // logits of this random model are ~0.3 in size: near-ties everywhere, so compare values
      // (F32: as the reference; Q8_0: llama.cpp rounds activations to q8_0 too, ~3% of the scale)
      const ok = maxAbs <= (type === 'f32' ? 1e-3 : 0.1 * worst);
      console.log(`${ok ? 'ok  ' : 'FAIL'} qwen35-tiny-realvocab (from HF) ${type.padEnd(4)} case ${c.name}: max |logit diff| ${maxAbs.toFixed(5)} (logits up to ${worst.toFixed(3)})`);
      ok ? passed++ : failed++;
    }
  }
}
fs.rmSync(tmp, { recursive: true, force: true });
await llama.dispose();
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
