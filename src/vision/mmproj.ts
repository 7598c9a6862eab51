// The vision tower's weights, from an mmproj GGUF (llama.cpp's names, VISION.md section 3) or an
// HF folder (`visual.*` / `model.visual.*`), into one shape the tower files read. Where the two
// differ the HF form is converted as llama.cpp's converter does: the Conv3d patch kernel
// [n, 3, 2, P, P] is two frames, and a still image is the same frame twice, so the kernel the
// tower uses is their sum; the fused qkv projection is split into q, k and v rows (the attention
// reads keys and values as rows of their own). Matrices stay in their stored type (F32, F16, BF16,
// Q8_0, ...: the backend's matmul reads them as stored); vectors are widened to F32.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend, Weight } from '../backend/backend.js';
import { fail, quote } from '../errors.js';
import { tensorBytes } from '../formats/dtype.js';
import type { TensorInfo, TensorSource } from '../formats/file.js';
import { openGguf } from '../formats/gguf.js';
import { dequantize } from '../formats/quant/index.js';
import { openSafetensors } from '../formats/safetensors.js';
import { visionConfigFromGguf, visionConfigFromHf, type VisionConfig } from './config.js';

export interface VisionLayer {
  norm1: Float32Array; // [n]
  norm1Bias?: Float32Array; // [n] (LayerNorm towers)
  wq: Weight; // [n, n]
  wk: Weight;
  wv: Weight;
  bq: Float32Array; // [n]
  bk: Float32Array;
  bv: Float32Array;
  wo: Weight; // [n, n]
  bo: Float32Array;
  norm2: Float32Array;
  norm2Bias?: Float32Array;
  gate?: Weight; // [ff, n] (SwiGLU: Qwen2.5-VL)
  gateBias?: Float32Array;
  up: Weight; // [ff, n] (HF up_proj / linear_fc1 / fc1)
  upBias: Float32Array;
  down: Weight; // [n, ff]
  downBias: Float32Array;
}

export interface VisionWeights {
  config: VisionConfig;
  /** the patch kernel, both frames summed, as a matrix over a patch's (c, ky, kx) values: [n, 3*P*P] F32 */
  patch: Weight;
  patchBias?: Float32Array; // [n] (Qwen3-VL / 3.5)
  /** the learned position grid, row gy*G + gx: [G*G, n] (Qwen3-VL / 3.5) */
  posEmbd?: Float32Array;
  layers: VisionLayer[];
  postNorm: Float32Array; // [n]: the merger's norm (HF merger.ln_q / merger.norm)
  postNormBias?: Float32Array;
  mm0: Weight; // [4n, 4n]
  mm0Bias: Float32Array;
  mm2: Weight; // [proj, 4n]
  mm2Bias: Float32Array;
}

/** Where each part of the tower lives in a file: llama.cpp's mmproj names or HF's (with its prefix). */
interface Names {
  patch: string[]; // GGUF: the two frames; HF: one Conv3d tensor
  patchBias: string;
  pos: string;
  layer(i: number, part: 'norm1' | 'norm2' | 'q' | 'k' | 'v' | 'qkv' | 'o' | 'gate' | 'up' | 'down'): string;
  postNorm: string;
  mm0: string;
  mm2: string;
}

const GGUF_NAMES: Names = {
  patch: ['v.patch_embd.weight', 'v.patch_embd.weight.1'],
  patchBias: 'v.patch_embd.bias',
  pos: 'v.position_embd.weight',
  layer: (i, p) => `v.blk.${i}.${{ norm1: 'ln1', norm2: 'ln2', q: 'attn_q', k: 'attn_k', v: 'attn_v', qkv: 'attn_qkv', o: 'attn_out', gate: 'ffn_gate', up: 'ffn_up', down: 'ffn_down' }[p]}`,
  postNorm: 'v.post_ln',
  mm0: 'mm.0',
  mm2: 'mm.2',
};

function hfNames(prefix: string, c: VisionConfig): Names {
  const q3 = c.projector_type === 'qwen3vl_merger',
    q2 = c.projector_type === 'qwen2vl_merger';
  const mlp = { gate: 'mlp.gate_proj', up: q3 ? 'mlp.linear_fc1' : q2 ? 'mlp.fc1' : 'mlp.up_proj', down: q3 ? 'mlp.linear_fc2' : q2 ? 'mlp.fc2' : 'mlp.down_proj' };
  return {
    patch: [`${prefix}patch_embed.proj.weight`],
    patchBias: `${prefix}patch_embed.proj.bias`,
    pos: `${prefix}pos_embed.weight`,
    layer: (i, p) => `${prefix}blocks.${i}.${{ norm1: 'norm1', norm2: 'norm2', q: 'attn.q', k: 'attn.k', v: 'attn.v', qkv: 'attn.qkv', o: 'attn.proj', ...mlp }[p]}`,
    postNorm: q3 ? `${prefix}merger.norm` : `${prefix}merger.ln_q`,
    mm0: q3 ? `${prefix}merger.linear_fc1` : `${prefix}merger.mlp.0`,
    mm2: q3 ? `${prefix}merger.linear_fc2` : `${prefix}merger.mlp.2`,
  };
}

/** Reads named tensors of one file with their shapes checked, and notes which were used. */
class Reader {
  readonly used = new Set<string>();
  constructor(
    readonly src: TensorSource,
    readonly be: Backend,
  ) {}
  info(name: string, shape: readonly number[], why: string): TensorInfo {
    const t = this.src.tensors.get(name);
    if (!t) fail(`${this.src.path}: tensor ${quote(name)} is missing (the vision tower needs it: ${why})`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      fail(`${this.src.path}: tensor ${quote(name)} has shape [${t.shape.join(', ')}], but the vision config implies [${shape.join(', ')}] (${why})`);
    this.used.add(name);
    return t;
  }
  has(name: string): boolean {
    return this.src.tensors.has(name);
  }
  bytes(t: TensorInfo): Uint8Array {
    const b = new Uint8Array(t.byteLength);
    this.src.readInto(t.name, b);
    return b;
  }
  floats(t: TensorInfo): Float32Array {
    const n = t.shape.reduce((a, b) => a * b, 1),
      out = new Float32Array(n);
    dequantize(t.dtype, this.bytes(t), 0, out, 0, n);
    return out;
  }
  vector(name: string, n: number, why: string): Float32Array {
    const f = this.floats(this.info(name, [n], why)),
      out = this.be.alloc(n);
    out.set(f);
    return out;
  }
  matrix(name: string, shape: [number, number], why: string): Weight {
    const t = this.info(name, shape, why);
    const w = this.be.weight(t.dtype, shape);
    this.src.readInto(name, w.bytes);
    return w;
  }
  /** Rows [r0, r0 + rows) of a stored matrix as a weight of their own (rows are whole blocks in every type). */
  rows(t: TensorInfo, all: Uint8Array, r0: number, rows: number): Weight {
    const cols = t.shape[1]!,
      rb = tensorBytes(t.dtype, [1, cols]);
    const w = this.be.weight(t.dtype, [rows, cols]);
    w.bytes.set(all.subarray(r0 * rb, (r0 + rows) * rb));
    return w;
  }
  f32(values: Float32Array, shape: [number, number]): Weight {
    const w = this.be.weight('F32', shape);
    new Float32Array(w.bytes.buffer, w.bytes.byteOffset, values.length).set(values);
    return w;
  }
}

/**
 * Load a tower: `p` an mmproj GGUF file, or an HF model folder (config.json with vision_config,
 * preprocessor_config.json, safetensors with the `visual.*` tensors; the language model's tensors
 * are left alone). `lmHidden`: the language model's hidden size, which the tower's rows must have.
 */
export function loadVisionWeights(p: string, be: Backend, lmHidden?: number): VisionWeights {
  if (!fs.existsSync(p)) fail(`${p}: no such mmproj file or model folder`);
  const dir = fs.statSync(p).isDirectory();
  if (dir) {
    const read = (f: string, need: boolean): unknown => {
      const file = path.join(p, f);
      if (!fs.existsSync(file)) {
        if (need) fail(`${file}: missing (an HF vision model folder needs it)`);
        return undefined;
      }
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        fail(`${file}: not valid JSON (${(e as Error).message})`);
      }
    };
    const c = visionConfigFromHf(read('config.json', true), read('preprocessor_config.json', false), p);
    checkProjection(c, lmHidden, p);
    const src = openSafetensors(p);
    try {
      const prefix = ['model.visual.', 'visual.'].find((x) => [...src.tensors.keys()].some((n) => n.startsWith(x)));
      if (!prefix) fail(`${p}: no vision tower tensors (visual.* or model.visual.*) in the safetensors files`);
      return loadTower(new Reader(src, be), c, hfNames(prefix, c), 'hf');
    } finally {
      src.close();
    }
  }
  const g = openGguf(p);
  try {
    const c = visionConfigFromGguf(g.metadata, p);
    checkProjection(c, lmHidden, p);
    const deep = [...g.tensors.keys()].find((n) => n.startsWith('v.deepstack.'));
    if (deep) fail(`${p}: tensor ${quote(deep)}: DeepStack layers (Qwen3-VL proper) are not supported; Qwen3.5's tower has none`);
    const r = new Reader(g, be);
    const w = loadTower(r, c, GGUF_NAMES, 'gguf');
    for (const name of g.tensors.keys()) if (!r.used.has(name)) fail(`${p}: tensor ${quote(name)} is not part of the ${c.projector_type} tower; refusing an mmproj qwen.ts does not understand`);
    return w;
  } finally {
    g.close();
  }
}

function checkProjection(c: VisionConfig, lmHidden: number | undefined, where: string): void {
  if (lmHidden !== undefined && c.out_hidden_size !== lmHidden)
    fail(`${where}: the vision tower makes rows of ${c.out_hidden_size} (projection_dim), but the language model's hidden size is ${lmHidden}: this mmproj belongs to another model`);
}

function loadTower(r: Reader, c: VisionConfig, N: Names, kind: 'gguf' | 'hf'): VisionWeights {
  const n = c.hidden_size,
    P = c.patch_size,
    ff = c.intermediate_size,
    layerNorm = c.norm === 'layer',
    q3 = c.projector_type === 'qwen3vl_merger';
  // the patch kernel: both frames summed (a still image is the frame twice)
  const patch = new Float32Array(n * 3 * P * P);
  if (kind === 'gguf') {
    for (const name of N.patch) {
      const f = r.floats(r.info(name, [n, 3, P, P], 'embedding_length x 3 x patch_size x patch_size, one frame of the patch kernel'));
      for (let i = 0; i < f.length; i++) patch[i]! += f[i]!;
    }
  } else {
    const f = r.floats(r.info(N.patch[0]!, [n, 3, c.temporal_patch_size, P, P], 'hidden_size x 3 x temporal_patch_size x patch_size x patch_size (Conv3d)'));
    for (let o = 0; o < n * 3; o++) for (let t = 0; t < 2; t++) for (let k = 0; k < P * P; k++) patch[o * P * P + k]! += f[(o * 2 + t) * P * P + k]!;
  }
  if (!q3 && r.has(N.patchBias)) fail(`${r.src.path}: tensor ${quote(N.patchBias)}: the ${c.projector_type} tower has no patch bias`);
  const G2 = q3 ? (kind === 'gguf' ? (r.src.tensors.get(N.pos)?.shape[0] ?? 0) : c.num_position_embeddings) : 0;
  if (q3 && !(G2 > 0 && Number.isInteger(Math.sqrt(G2)))) fail(`${r.src.path}: tensor ${quote(N.pos)} is missing or not a square grid of positions (the ${c.projector_type} tower needs it)`);
  c.num_position_embeddings = G2;
  const posEmbd = q3 ? r.floats(r.info(N.pos, [G2, n], 'positions (a square grid) x embedding_length')) : undefined;

  const norm = (name: string, why: string) => ({ w: r.vector(`${name}.weight`, n, why), b: layerNorm ? r.vector(`${name}.bias`, n, why) : undefined });
  const layers: VisionLayer[] = [];
  // Qwen2.5-VL files from older converters store ffn_up and ffn_down swapped (clip.cpp swaps them
  // back when ffn_down is [ff, n]); with ff == n the two cannot be told apart, as in clip.cpp
  const swapped = kind === 'gguf' && !q3 && ff !== n && r.src.tensors.get(N.layer(0, 'down') + '.weight')?.shape[0] === ff;
  for (let i = 0; i < c.depth; i++) {
    const L = (p: Parameters<Names['layer']>[1]) => N.layer(i, p);
    const n1 = norm(L('norm1'), 'the first norm of a block: embedding_length');
    let wq: Weight, wk: Weight, wv: Weight, bq: Float32Array, bk: Float32Array, bv: Float32Array;
    if (r.has(`${L('qkv')}.weight`) || kind === 'hf') {
      // fused projection, rows [q; k; v]
      const t = r.info(`${L('qkv')}.weight`, [3 * n, n], '3*hidden_size x hidden_size: the fused q, k, v projection');
      const all = r.bytes(t);
      [wq, wk, wv] = [0, 1, 2].map((j) => r.rows(t, all, j * n, n)) as [Weight, Weight, Weight];
      const b = r.vector(`${L('qkv')}.bias`, 3 * n, '3*hidden_size');
      [bq, bk, bv] = [0, 1, 2].map((j) => b.subarray(j * n, (j + 1) * n)) as [Float32Array, Float32Array, Float32Array];
    } else {
      const qkv = (x: 'q' | 'k' | 'v') => ({ w: r.matrix(`${L(x)}.weight`, [n, n], 'embedding_length x embedding_length'), b: r.vector(`${L(x)}.bias`, n, 'embedding_length') });
      const [q, k, v] = [qkv('q'), qkv('k'), qkv('v')];
      [wq, wk, wv, bq, bk, bv] = [q.w, k.w, v.w, q.b, k.b, v.b];
    }
    const wo = r.matrix(`${L('o')}.weight`, [n, n], 'embedding_length x embedding_length: the attention output');
    const bo = r.vector(`${L('o')}.bias`, n, 'embedding_length');
    const n2 = norm(L('norm2'), 'the second norm of a block: embedding_length');
    const [upName, downName] = swapped ? [L('down'), L('up')] : [L('up'), L('down')];
    const gated = c.hidden_act === 'silu';
    const gate = gated ? r.matrix(`${L('gate')}.weight`, [ff, n], 'feed_forward_length x embedding_length') : undefined;
    const gateBias = gated ? r.vector(`${L('gate')}.bias`, ff, 'feed_forward_length') : undefined;
    const up = r.matrix(`${upName}.weight`, [ff, n], 'feed_forward_length x embedding_length');
    const upBias = r.vector(`${upName}.bias`, ff, 'feed_forward_length');
    const down = r.matrix(`${downName}.weight`, [n, ff], 'embedding_length x feed_forward_length');
    const downBias = r.vector(`${downName}.bias`, n, 'embedding_length');
    layers.push({ norm1: n1.w, norm1Bias: n1.b, wq, wk, wv, bq, bk, bv, wo, bo, norm2: n2.w, norm2Bias: n2.b, gate, gateBias, up, upBias, down, downBias });
  }
  const post = norm(N.postNorm, "the merger's norm: embedding_length");
  const m = 4 * n,
    proj = c.out_hidden_size;
  return {
    config: c,
    patch: r.f32(patch, [n, 3 * P * P]),
    patchBias: q3 ? r.vector(N.patchBias, n, 'embedding_length') : undefined,
    posEmbd,
    layers,
    postNorm: post.w,
    postNormBias: post.b,
    mm0: r.matrix(`${N.mm0}.weight`, [m, m], '4*embedding_length x 4*embedding_length: the merger'),
    mm0Bias: r.vector(`${N.mm0}.bias`, m, '4*embedding_length'),
    mm2: r.matrix(`${N.mm2}.weight`, [proj, m], 'projection_dim x 4*embedding_length: the merger'),
    mm2Bias: r.vector(`${N.mm2}.bias`, proj, 'projection_dim'),
  };
}
