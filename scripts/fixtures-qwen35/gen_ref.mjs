#!/usr/bin/env node
// Reference logits with llama.cpp (node-llama-cpp) for a list of token-id prompts.
//   node gen_ref.mjs MODEL.gguf SPEC.json OUTDIR [--incremental] [--gen 8] [--suffix prefill_logits] [--threads 1]
// SPEC.json: [{name, prompt_ids}]. Writes OUTDIR/<name>.<suffix>.f32 (one controlledEvaluate call, batch =
// context = whole prompt, logits requested at every position) and with --incremental
// OUTDIR/<name>.incremental_logits.f32 (a fresh context; one controlledEvaluate call per token through
// the KV / recurrent cache over prompt + gen greedy tokens; greedy = argmax of llama.cpp's logits,
// lowest id on ties), and prints a JSON summary (greedy ids, shapes, min top1-top2 margin).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, loadLlama, loadModel, createContext, binaryInfo } from './common.mjs';

const args = parseArgs(process.argv.slice(2), { incremental: false, gen: 8, suffix: 'prefill_logits', threads: 1, logLevel: 'warn', kv: 'f32' });
const [modelPath, specPath, outDir] = args._;
const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
const llama = await loadLlama({ threads: args.threads, logLevel: args.logLevel });
const model = await loadModel(llama, path.resolve(modelPath));
const want = { logits: true, token: true, options: { temperature: 0 } };
function dense(map, V) {
  const a = new Float32Array(V);
  if (map.size !== V) throw new Error(`vocab ${map.size} != ${V}`);
  for (const [t, v] of map) a[t] = v;
  return a;
}
function argmax(a) {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}
function margin(a) {
  let m1 = -Infinity,
    m2 = -Infinity;
  for (const x of a) {
    if (x > m1) {
      m2 = m1;
      m1 = x;
    } else if (x > m2) m2 = x;
  }
  return m1 - m2;
}
const out = { model: path.resolve(modelPath), llama: binaryInfo(llama).llamaCppRelease, cases: [] };
fs.mkdirSync(outDir, { recursive: true });
for (const c of spec) {
  const ids = c.prompt_ids,
    n = ids.length;
  const ctxSize = Math.max(64, n + args.gen + 8);
  // prefill: one batch, all positions
  let ctx = await createContext(model, { threads: args.threads, contextSize: ctxSize, batchSize: ctxSize, kv: args.kv });
  let seq = ctx.getSequence();
  const res = await seq.controlledEvaluate(ids.map((t) => [t, { generateNext: want }]));
  const Vn = res[0].next.logits.size;
  const pre = new Float32Array(n * Vn);
  res.forEach((r, i) => pre.set(dense(r.next.logits, Vn), i * Vn));
  await ctx.dispose();
  fs.writeFileSync(path.join(outDir, `${c.name}.${args.suffix}.f32`), Buffer.from(pre.buffer));
  const rec = { name: c.name, n_prompt: n, n_vocab: Vn, prefill_shape: [n, Vn], prefill_argmax_last: argmax(pre.subarray((n - 1) * Vn)) };
  if (args.incremental) {
    ctx = await createContext(model, { threads: args.threads, contextSize: ctxSize, batchSize: ctxSize, kv: args.kv });
    seq = ctx.getSequence();
    const rows = [],
      gen = [];
    let minMargin = Infinity;
    let tok = null;
    for (let i = 0; i < n + args.gen; i++) {
      const t = i < n ? ids[i] : tok;
      if (i >= n) gen.push(t);
      const [r] = await seq.controlledEvaluate([[t, { generateNext: want }]]);
      const l = dense(r.next.logits, Vn);
      rows.push(l);
      if (i >= n - 1) {
        tok = argmax(l);
        if (i < n + args.gen - 1) minMargin = Math.min(minMargin, margin(l));
      }
    }
    await ctx.dispose();
    const inc = new Float32Array(rows.length * Vn);
    rows.forEach((r, i) => inc.set(r, i * Vn));
    fs.writeFileSync(path.join(outDir, `${c.name}.incremental_logits.f32`), Buffer.from(inc.buffer));
    let maxd = 0;
    for (let i = 0; i < n * Vn; i++) maxd = Math.max(maxd, Math.abs(inc[i] - pre[i]));
    Object.assign(rec, { greedy_generated_ids: gen, incremental_shape: [n + args.gen, Vn], greedy_min_top1_top2_margin: minMargin, prefill_vs_incremental_max_abs_diff: maxd });
  }
  out.cases.push(rec);
}
console.log(JSON.stringify(out, null, 1));
await model.dispose();
await llama.dispose();
