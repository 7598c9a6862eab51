// (added) realvocab reference: node rv_ref.mjs MODEL.gguf PROMPTS.json OUTDIR FULLDIR
// PROMPTS.json: [{name, text, special}] -> ids = model.tokenize(text, special)
import fs from 'node:fs';
import path from 'node:path';
import { loadLlama, loadModel, createContext, binaryInfo } from './common.mjs';
const [modelPath, promptsPath, outDir, fullDir] = process.argv.slice(2);
const NGEN = 8;
const llama = await loadLlama({ threads: 1, logLevel: 'warn' });
const model = await loadModel(llama, path.resolve(modelPath));
const want = { logits: true, token: true, options: { temperature: 0 } };
const dense = (m) => {
  const a = new Float32Array(m.size);
  for (const [t, v] of m) a[t] = v;
  return a;
};
const argmax = (a) => {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
};
const top10 = (a) => {
  const idx = [...a.keys()].sort((x, y) => a[y] - a[x] || x - y).slice(0, 10);
  let m = -Infinity;
  for (const v of a) m = Math.max(m, v);
  let s = 0;
  for (const v of a) s += Math.exp(v - m);
  return { ids: idx, logits: idx.map((i) => a[i]), logsumexp: m + Math.log(s) };
};
const out = [];
fs.mkdirSync(outDir, { recursive: true });
fs.mkdirSync(fullDir, { recursive: true });
for (const p of JSON.parse(fs.readFileSync(promptsPath, 'utf8'))) {
  const ids = [...model.tokenize(p.text, p.special)];
  const n = ids.length,
    ctxSize = Math.max(64, n + NGEN + 8);
  let ctx = await createContext(model, { threads: 1, contextSize: ctxSize, batchSize: ctxSize, kv: 'f32' });
  let seq = ctx.getSequence();
  const res = await seq.controlledEvaluate(ids.map((t) => [t, { generateNext: want }]));
  const rows = res.map((r) => dense(r.next.logits));
  await ctx.dispose();
  const V = rows[0].length;
  fs.writeFileSync(path.join(outDir, `${p.name}.last_prompt_position_logits.f32`), Buffer.from(rows[n - 1].buffer));
  const full = new Float32Array(n * V);
  rows.forEach((r, i) => full.set(r, i * V));
  fs.writeFileSync(path.join(fullDir, `${p.name}.prefill_logits.f32`), Buffer.from(full.buffer));
  ctx = await createContext(model, { threads: 1, contextSize: ctxSize, batchSize: ctxSize, kv: 'f32' });
  seq = ctx.getSequence();
  const inc = [],
    gen = [];
  let tok = null,
    minMargin = Infinity,
    maxd = 0;
  for (let i = 0; i < n + NGEN; i++) {
    const t = i < n ? ids[i] : tok;
    if (i >= n) gen.push(t);
    const [r] = await seq.controlledEvaluate([[t, { generateNext: want }]]);
    const l = dense(r.next.logits);
    inc.push(l);
    if (i < n) for (let j = 0; j < V; j++) maxd = Math.max(maxd, Math.abs(l[j] - rows[i][j]));
    if (i >= n - 1) {
      tok = argmax(l);
      const tt = top10(l);
      if (i < n + NGEN - 1) minMargin = Math.min(minMargin, tt.logits[0] - tt.logits[1]);
    }
  }
  await ctx.dispose();
  const incAll = new Float32Array(inc.length * V);
  inc.forEach((r, i) => incAll.set(r, i * V));
  fs.writeFileSync(path.join(fullDir, `${p.name}.incremental_logits.f32`), Buffer.from(incAll.buffer));
  out.push({
    name: p.name,
    prompt_text: p.text,
    tokenize_call: `model.tokenize(text, ${p.special})`,
    prompt_ids: ids,
    n_vocab: V,
    greedy_generated_ids: gen,
    greedy_generated_text: model.detokenize(gen, true),
    greedy_generated_tokens: gen.map((t) => model.detokenize([t], true)),
    prompt_detokenized: model.detokenize(ids, true),
    greedy_min_top1_top2_margin: minMargin,
    prefill_vs_incremental_max_abs_diff: maxd,
    prefill_top10_per_position: rows.map(top10),
    incremental_top10_per_step: inc.map(top10),
  });
}
console.log(JSON.stringify({ llama: binaryInfo(llama).llamaCppRelease, cases: out }));
await model.dispose();
await llama.dispose();
