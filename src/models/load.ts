// Load a model from an HF folder (config.json + safetensors), a GGUF file or split GGUF set (any
// shard, or a folder holding one set), optionally quantising its float matrices as they load.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../errors.js';
import { ggufInFolder, openGgufModel } from '../formats/gguf_split.js';
import { openSafetensors } from '../formats/safetensors.js';
import type { TensorSource } from '../formats/file.js';
import type { Backend, KvType } from '../backend/backend.js';
import { ReferenceBackend } from '../backend/reference.js';
import { parseHfConfig, type QwenConfig } from './config.js';
import { ggufConfig, loadFromSource } from './load_source.js';
import type { CausalLM } from './model.js';
import type { LoadQuantType } from './weights.js';
import { loadLoras, type LoraSpec } from '../lora/load.js';
import { attachVision } from '../vision/attach.js';

export interface LoadOptions {
  backend?: Backend;
  /** LoRA adapters to load onto the model (ids 1, 2, ... in order; src/lora/load.ts) */
  lora?: LoraSpec[];
  /** progress of reading the weights, in bytes */
  onProgress?: (done: number, total: number) => void;
  /** one-line remarks about the model (default: written to stderr) */
  onNote?: (note: string) => void;
  /**
   * Quantise F32 / F16 / BF16 matrices to this type as they load (nothing is written to disk), with
   * the per-tensor choices of `qwen-ts quantize` (norms and biases stay F32). Matrices already
   * stored quantised load as stored, with a note.
   */
  quantize?: LoadQuantType;
  /**
   * Check every tensor's values as it loads, as llama.cpp's --check-tensors: F32 / F16 / BF16
   * elements and the f16 scales of every quantised block must be finite; the first NaN or infinity
   * is an error naming the file, tensor, block and field.
   */
  checkTensors?: boolean;
  /**
   * Cap each sequence's context (positions, and so KV-cache memory) at this many tokens, as
   * llama.cpp's --ctx-size; the model's config then reports it as max_position_embeddings. It may
   * not exceed the model's own context. RoPE (YaRN included) does not depend on it.
   */
  ctxSize?: number;
  /**
   * How KV caches store keys and values, as llama.cpp's --cache-type-k/v: f32 (default), f16, or
   * q8_0 (head_dim a multiple of 32); attention reads them as stored. DeltaNet states stay f32.
   */
  cacheType?: KvType;
  /**
   * The vision tower: an mmproj GGUF (llama.cpp's --mmproj) or an HF folder holding one. Absent: a
   * GGUF model with M-RoPE takes the one `mmproj*.gguf` beside it that fits, an HF folder its own
   * `visual.*` tensors (src/vision/attach.ts). false: no tower (llama.cpp's --no-mmproj).
   */
  mmproj?: string | false;
}

export type ModelFormat = 'hf' | 'gguf';

export function detectFormat(p: string): ModelFormat {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    fail(`${p}: no such file or folder`);
  }
  if (st.isDirectory()) {
    if (fs.existsSync(path.join(p, 'config.json'))) return 'hf';
    if (ggufInFolder(p)) return 'gguf';
    fail(`${p}: not a model folder (no config.json, and no GGUF file)`);
  }
  const head = Buffer.alloc(4);
  const fd = fs.openSync(p, 'r');
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString('latin1') === 'GGUF') return 'gguf';
  fail(`${p}: neither a GGUF file nor a Hugging Face model folder`);
}

export function readHfConfig(dir: string): QwenConfig {
  const file = path.join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseHfConfig(raw, file);
}

/** Open the tensors and config of a model, without reading any weights yet. */
export function openModelFiles(p: string): { format: ModelFormat; config: QwenConfig; source: TensorSource } {
  const format = detectFormat(p);
  if (format === 'hf') {
    const config = readHfConfig(p);
    return { format, config, source: openSafetensors(p) };
  }
  const g = openGgufModel(fs.statSync(p).isDirectory() ? ggufInFolder(p)! : p);
  try {
    return { format, config: ggufConfig(g), source: g };
  } catch (e) {
    g.close();
    throw e;
  }
}

export function loadModel(p: string, opts: LoadOptions = {}): CausalLM {
  const backend = opts.backend ?? new ReferenceBackend();
  const { format, config: full, source } = openModelFiles(p);
  try {
    const model = loadFromSource(format, full, source, { ...opts, backend, onNote: opts.onNote ?? ((m) => process.stderr.write(`note: ${m}\n`)) });
    if (opts.lora?.length) loadLoras(model, opts.lora, p, opts.onNote);
    attachVision(model, p, format, backend, { mmproj: opts.mmproj, onNote: opts.onNote ?? ((m) => process.stderr.write(`note: ${m}\n`)) });
    return model;
  } finally {
    source.close(); // every weight has been read into backend storage
  }
}

export { withContext } from './load_source.js';
