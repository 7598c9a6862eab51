// LoRA training's core: the loss of a batch of token sequences under a base model plus an adapter,
// and its gradients w.r.t. every adapted module's A and B, through the frozen base (any stored
// type). Gradient checkpointing per layer: the forward keeps only each layer's input; the backward
// recomputes one layer at a time (grad_layer.ts), so memory stays near inference memory. The
// logits are computed only at the loss positions, a chunk of rows at a time.
import { HEAD, type Backend, type Weight } from '../backend/backend.js';
import { createBackend } from '../backend/index.js';
import { fail, quote } from '../errors.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { loadSwiglu, type FfnWeights } from '../models/blocks.js';
import type { QwenConfig } from '../models/config.js';
import { loadDecoder, type DecoderWeights } from '../models/decoder.js';
import { openModelFiles } from '../models/load.js';
import { ropeBase } from '../models/rope.js';
import { WeightLoader, type LoadQuantType } from '../models/weights.js';
import { layerBackward, layerForward, type Dims, type HeldLora, type Rows } from './grad_layer.js';

export interface TrainSeq {
  tokens: Int32Array;
  /** loss on predicting tokens[t+1] from position t where mask[t+1] = 1 */
  mask: Uint8Array;
}

export interface LoraGrads {
  /** by LoraModule.name: dL/dA [r, K], dL/dB [N, r] */
  get(name: string): { a: Float32Array; b: Float32Array } | undefined;
}

/** A loaded base model the trainer can run forward and backward (dense qwen2 / qwen3). */
export interface TrainModel {
  readonly config: QwenConfig;
  readonly backend: Backend;
  dispose(): void;
}

export interface TrainLoadOptions {
  /** threads of the WebAssembly backend (default: the number of cores) */
  threads?: number;
  /** a backend to load into instead (e.g. the reference backend); disposed with the model */
  backend?: Backend;
  /** quantise float matrices as they load (the loader's --quantize) */
  quantize?: LoadQuantType;
  /** one-line remarks about the model (default: stderr) */
  onNote?: (note: string) => void;
}

class LoadedTrainModel implements TrainModel {
  constructor(
    readonly config: QwenConfig,
    readonly backend: Backend,
    readonly w: DecoderWeights<FfnWeights>,
  ) {}
  dispose(): void {
    this.backend.dispose?.();
  }
}

/** Load a dense Qwen2 / Qwen3 model (HF folder or GGUF, any stored type) for training. */
export async function loadTrainModel(source: string, opts: TrainLoadOptions = {}): Promise<TrainModel> {
  const { format, config, source: files } = openModelFiles(source);
  try {
    const kind = config.model_type === 'qwen2' ? 'bias' : config.model_type === 'qwen3' ? 'qk_norm' : undefined;
    if (!kind) fail(`${source}: LoRA training supports dense qwen2 and qwen3 models; this one is ${quote(config.model_type)}`);
    const be = opts.backend ?? createBackend('wasm', opts.threads);
    try {
      const loader = new WeightLoader(files, format, be, undefined, config.model_type, opts.quantize);
      const w = loadDecoder(config, loader, kind, (i) => loadSwiglu(config, loader, i));
      if (!w.output) fail(`${source}: this checkpoint has no lm_head.weight, so it has no language-model loss to train`);
      for (const n of loader.notes) (opts.onNote ?? ((m) => process.stderr.write(`note: ${m}\n`)))(n);
      return new LoadedTrainModel(config, be, w);
    } catch (e) {
      if (!opts.backend) be.dispose?.();
      throw e;
    }
  } finally {
    files.close();
  }
}

/** The batch: every sequence's rows back to back, and the loss rows with their target ids. */
interface Batch {
  rows: Rows;
  tokens: Int32Array;
  /** row of each loss position, and the id it must predict */
  lossRows: Int32Array;
  targets: Int32Array;
}

function makeBatch(c: QwenConfig, seqs: TrainSeq[]): Batch {
  const T = seqs.reduce((n, s) => n + s.tokens.length, 0);
  const tokens = new Int32Array(T),
    positions = new Int32Array(T),
    start = new Int32Array(T);
  const lens = Int32Array.from(seqs, (s) => s.tokens.length);
  const lossRows: number[] = [],
    targets: number[] = [];
  let r = 0;
  seqs.forEach((s, i) => {
    const n = s.tokens.length;
    if (n === 0) fail(`training sequence ${i} is empty`);
    if (s.mask.length !== n) fail(`training sequence ${i} has ${n} tokens but a mask of ${s.mask.length}`);
    if (n > c.max_position_embeddings) fail(`training sequence ${i} has ${n} tokens, more than the model's context of ${c.max_position_embeddings}`);
    for (let t = 0; t < n; t++) {
      const id = s.tokens[t]!;
      if (!(id >= 0 && id < c.vocab_size)) fail(`training sequence ${i}: token ${t} is ${id}, outside the vocabulary (0..${c.vocab_size - 1})`);
      tokens[r + t] = id;
      positions[r + t] = t;
      start[r + t] = r;
      if (t + 1 < n && s.mask[t + 1]) {
        lossRows.push(r + t);
        targets.push(s.tokens[t + 1]!);
      }
    }
    r += n;
  });
  const back = positions.map((p) => -p);
  return { rows: { T, positions, back, lens, start }, tokens, lossRows: Int32Array.from(lossRows), targets: Int32Array.from(targets) };
}

function dims(c: QwenConfig): Dims {
  return { D: c.hidden_size, F: c.intermediate_size, Hq: c.num_attention_heads, Hkv: c.num_key_value_heads, Dh: c.head_dim, eps: c.rms_norm_eps, rope: ropeBase(c) };
}

/** An f32 weight [rows, cols] in backend storage holding src * scale, or with `transpose` (src [cols, rows])^T * scale; and the array to free. */
function f32Weight(be: Backend, src: Float32Array, shape: [number, number], scale: number, transpose = false): { w: Weight; buf: Float32Array } {
  const buf = be.alloc(src.length),
    [R, C] = shape;
  if (transpose) for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) buf[i * C + j] = src[j * R + i]! * scale;
  else for (let i = 0; i < src.length; i++) buf[i] = src[i]! * scale;
  return { w: { dtype: 'F32', shape, bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) }, buf };
}

/** The adapter's modules in backend storage, by layer, then by target; checked against the model. */
function holdAdapter(m: LoadedTrainModel, adapter: LoraAdapter): { layers: Map<string, HeldLora>[]; bufs: Float32Array[]; byName: Map<string, HeldLora> } {
  const be = m.backend,
    L = m.w.layers;
  const layers = L.map(() => new Map<string, HeldLora>()),
    bufs: Float32Array[] = [],
    byName = new Map<string, HeldLora>();
  for (const mod of adapter.modules) {
    const layer = L[mod.layer];
    const base = layer && baseWeight(layer, mod.target);
    const where = `LoRA adapter ${quote(adapter.name)}: module ${quote(mod.name)}`;
    if (!base) fail(`${where}: the model has no ${quote(mod.target)} in layer ${mod.layer}`);
    const [N, K] = base.shape as [number, number];
    if (mod.inFeatures !== K || mod.outFeatures !== N || mod.a.length !== mod.r * K || mod.b.length !== N * mod.r)
      fail(`${where} is [${mod.outFeatures}, ${mod.inFeatures}] at rank ${mod.r}, but the model's weight is [${N}, ${K}]`);
    if (byName.has(mod.name)) fail(`${where} appears twice`);
    be.place?.(mod.layer);
    const a = f32Weight(be, mod.a, [mod.r, K], 1),
      b = f32Weight(be, mod.b, [mod.r, N], mod.scale, true);
    bufs.push(a.buf, b.buf);
    const held: HeldLora = { r: mod.r, scale: mod.scale, a: a.w, bt: b.w, da: new Float32Array(mod.r * K), db: new Float32Array(N * mod.r) };
    layers[mod.layer]!.set(mod.target, held);
    byName.set(mod.name, held);
  }
  return { layers, bufs, byName };
}

function baseWeight(L: LoadedTrainModel['w']['layers'][number], target: string): Weight | undefined {
  const w: Record<string, Weight> = { q_proj: L.wq, k_proj: L.wk, v_proj: L.wv, o_proj: L.wo, gate_proj: L.ffn.ffnGate, up_proj: L.ffn.ffnUp, down_proj: L.ffn.ffnDown };
  return Object.hasOwn(w, target) ? w[target] : undefined;
}

function loaded(model: TrainModel): LoadedTrainModel {
  if (!(model instanceof LoadedTrainModel)) fail('lossAndGrad: the model must come from loadTrainModel');
  return model;
}

/** Logit rows computed at once: about 64 MB of them. */
const LOGIT_FLOATS = 1 << 24;

/**
 * The summed cross-entropy of the loss rows given the final hidden state x [T, D]; with g, adds
 * its gradient w.r.t. x into g [T, D]. log-softmax over the full vocabulary, stable (max taken
 * out, sums in f64).
 */
function headLoss(m: LoadedTrainModel, b: Batch, x: Float32Array, g?: Float32Array): number {
  const be = m.backend,
    c = m.config,
    w = m.w;
  const D = c.hidden_size,
    V = c.vocab_size,
    R = b.lossRows.length;
  const head = w.output!,
    chunk = Math.max(1, Math.min(R, Math.floor(LOGIT_FLOATS / V)));
  let loss = 0;
  for (let r0 = 0; r0 < R; r0 += chunk) {
    const n = Math.min(chunk, R - r0);
    const sel = be.alloc(n * D); // [n, D]
    for (let i = 0; i < n; i++) be.copy(sel, i * D, x, b.lossRows[r0 + i]! * D, D);
    const h = be.alloc(n * D); // [n, D]
    be.rmsNorm(h, sel, w.outputNorm, n, D, c.rms_norm_eps);
    const logits = be.alloc(n * V); // [n, V]
    be.matmul(logits, h, head, n);
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * V, (i + 1) * V);
      let max = -Infinity;
      for (let j = 0; j < V; j++) if (row[j]! > max) max = row[j]!;
      const tgt = b.targets[r0 + i]!,
        picked = row[tgt]!;
      let sum = 0;
      if (g)
        for (let j = 0; j < V; j++) sum += row[j] = Math.exp(row[j]! - max); // kept for the softmax below
      else for (let j = 0; j < V; j++) sum += Math.exp(row[j]! - max);
      loss += max + Math.log(sum) - picked;
      if (!g) continue;
      const inv = 1 / sum;
      for (let j = 0; j < V; j++) row[j]! *= inv; // softmax - one-hot: d loss / d logits
      row[tgt]! -= 1;
    }
    if (g) {
      be.matmulT(h, logits, head, n); // d loss / d normed rows
      be.rmsNormBack(h, h, sel, w.outputNorm, n, D, c.rms_norm_eps);
      for (let i = 0; i < n; i++) {
        const o = b.lossRows[r0 + i]! * D;
        be.add(g.subarray(o, o + D), g.subarray(o, o + D), h.subarray(i * D, (i + 1) * D), D);
      }
    }
    for (const a of [sel, h, logits]) be.free?.(a);
  }
  return loss;
}

/** Run the layers from the embeddings; keeps each layer's input when `inputs` is given. */
function forwardLayers(m: LoadedTrainModel, b: Batch, held: Map<string, HeldLora>[], inputs?: Float32Array[]): Float32Array {
  const be = m.backend,
    d = dims(m.config);
  be.place?.(HEAD);
  let x = be.alloc(b.rows.T * d.D); // [T, D]
  be.embed(x, m.w.tokenEmbd, b.tokens);
  m.w.layers.forEach((L, il) => {
    be.place?.(il);
    const { y } = layerForward(be, L, held[il]!, x, b.rows, d, false);
    if (inputs) inputs.push(x);
    else be.free?.(x);
    x = y;
  });
  be.place?.(HEAD);
  return x;
}

function run<R>(model: TrainModel, adapter: LoraAdapter, seqs: TrainSeq[], f: (m: LoadedTrainModel, b: Batch, held: ReturnType<typeof holdAdapter>) => R): R {
  const m = loaded(model),
    be = m.backend;
  const b = makeBatch(m.config, seqs);
  be.beginPass?.(); // everything allocated here is released by the next pass at the latest
  try {
    const held = holdAdapter(m, adapter);
    try {
      return f(m, b, held);
    } finally {
      for (const a of held.bufs) be.free?.(a);
    }
  } finally {
    be.endPass?.();
  }
}

/** Summed cross-entropy over the masked targets of all seqs and the number of targets. */
export function lossOnly(model: TrainModel, adapter: LoraAdapter, seqs: TrainSeq[]): { loss: number; count: number } {
  return run(model, adapter, seqs, (m, b, held) => {
    const x = forwardLayers(m, b, held.layers);
    const loss = b.lossRows.length ? headLoss(m, b, x) : 0;
    m.backend.free?.(x);
    return { loss, count: b.lossRows.length };
  });
}

/**
 * Summed cross-entropy over the masked targets of all seqs, the number of targets, and the
 * gradients of the sum w.r.t. every module's A and B (the caller divides by the count it wants).
 */
export function lossAndGrad(model: TrainModel, adapter: LoraAdapter, seqs: TrainSeq[]): { loss: number; count: number; grads: LoraGrads } {
  return run(model, adapter, seqs, (m, b, held) => {
    const be = m.backend,
      d = dims(m.config);
    const inputs: Float32Array[] = [];
    const x = forwardLayers(m, b, held.layers, inputs);
    let g = be.alloc(b.rows.T * d.D).fill(0); // [T, D]: d loss / d final hidden state
    const loss = b.lossRows.length ? headLoss(m, b, x, g) : 0;
    be.free?.(x);
    for (let il = m.w.layers.length - 1; il >= 0; il--) {
      be.place?.(il);
      if (b.lossRows.length) g = layerBackward(be, m.w.layers[il]!, held.layers[il]!, inputs[il]!, g, b.rows, d);
      be.free?.(inputs[il]!);
    }
    be.free?.(g);
    const byName = held.byName;
    return { loss, count: b.lossRows.length, grads: { get: (name: string) => byName.get(name) && { a: byName.get(name)!.da, b: byName.get(name)!.db } } };
  });
}
