// A random-weight Qwen2.5-shaped Q8_0 GGUF written at test (or bench) time, with the Qwen2.5
// tokenizer from test/fixtures beside it: a model of the real 0.5B shape (its compute cost, its
// 151,936-row vocabulary) without a 0.5 GB file in the repository. Q8_0 blocks are written
// directly (scale 2^-12, int8 values uniform in [-127, 127]: weights of std ~0.018), and layers of
// one shape share their bytes, so writing costs little more than the disk.
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeGguf, type GgufTensorOut } from '../../src/formats/gguf_writer.js';
import type { GgufKV } from '../../src/formats/gguf.js';
import { fixtureDir } from '../helpers.js';

export interface DenseShape {
  layers: number;
  hidden: number;
  ffn: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  ctx: number;
}

/** Qwen2.5-0.5B-Instruct's hyper-parameters (tied embeddings, q/k/v biases). */
export const QWEN25_05B: DenseShape = { layers: 24, hidden: 896, ffn: 4864, heads: 14, kvHeads: 2, vocab: 151936, ctx: 32768 };

function q8Blocks(rows: number, cols: number): Uint8Array {
  const n = (rows * cols) / 32;
  const b = new Uint8Array(n * 34);
  randomFillSync(b);
  for (let i = 0; i < b.length; i++) if (b[i] === 0x80) b[i] = 0x81; // no -128, as ggml's quantiser
  for (let k = 0; k < n; k++) {
    b[k * 34] = 0x00;
    b[k * 34 + 1] = 0x0c;
  } // f16 2^-12
  return b;
}

/** Write `dir`/model.gguf (Q8_0 matrices, F32 norms and zero biases) and the Qwen2.5 tokenizer files; returns `dir`. */
export function writeRandomQwen2(dir: string, s: DenseShape = QWEN25_05B): string {
  fs.mkdirSync(dir, { recursive: true });
  const a = 'qwen2',
    D = s.hidden,
    kv = (D / s.heads) * s.kvHeads;
  const metadata: GgufKV[] = [
    { key: 'general.architecture', type: 'str', value: a },
    { key: 'general.name', type: 'str', value: 'random-qwen2.5-shape' },
    { key: 'general.file_type', type: 'u32', value: 7 }, // MOSTLY_Q8_0
    { key: `${a}.block_count`, type: 'u32', value: s.layers },
    { key: `${a}.context_length`, type: 'u32', value: s.ctx },
    { key: `${a}.embedding_length`, type: 'u32', value: D },
    { key: `${a}.feed_forward_length`, type: 'u32', value: s.ffn },
    { key: `${a}.attention.head_count`, type: 'u32', value: s.heads },
    { key: `${a}.attention.head_count_kv`, type: 'u32', value: s.kvHeads },
    { key: `${a}.rope.freq_base`, type: 'f32', value: 1e6 },
    { key: `${a}.attention.layer_norm_rms_epsilon`, type: 'f32', value: 1e-6 },
  ];
  const shared = new Map<string, Uint8Array>();
  const q8 = (name: string, rows: number, cols: number): GgufTensorOut => ({
    name,
    dtype: 'Q8_0',
    shape: [rows, cols],
    data: () => {
      const k = `${rows}x${cols}`;
      let b = shared.get(k);
      if (!b) shared.set(k, (b = q8Blocks(rows, cols)));
      return b;
    },
  });
  const f32 = (name: string, n: number, v: number): GgufTensorOut => ({ name, dtype: 'F32', shape: [n], data: () => new Uint8Array(new Float32Array(n).fill(v).buffer) });
  const tensors: GgufTensorOut[] = [q8('token_embd.weight', s.vocab, D), f32('output_norm.weight', D, 1)];
  for (let l = 0; l < s.layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      f32(`${p}attn_norm.weight`, D, 1),
      f32(`${p}ffn_norm.weight`, D, 1),
      q8(`${p}attn_q.weight`, D, D),
      f32(`${p}attn_q.bias`, D, 0),
      q8(`${p}attn_k.weight`, kv, D),
      f32(`${p}attn_k.bias`, kv, 0),
      q8(`${p}attn_v.weight`, kv, D),
      f32(`${p}attn_v.bias`, kv, 0),
      q8(`${p}attn_output.weight`, D, D),
      q8(`${p}ffn_gate.weight`, s.ffn, D),
      q8(`${p}ffn_up.weight`, s.ffn, D),
      q8(`${p}ffn_down.weight`, D, s.ffn),
    );
  }
  writeGguf(path.join(dir, 'model.gguf'), { metadata, tensors });
  // the tokenizer from its HF files: a folder holding one GGUF and tokenizer.json loads as both
  const tok = fixtureDir('tokenizer/qwen2.5');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tok, f), path.join(dir, f));
  return dir;
}
