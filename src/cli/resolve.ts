// A model argument is a local folder or file, or a hub id (owner/name[@revision], hf:/ms: prefix,
// owner/name/FILE.gguf) pulled into the cache on first use. Also the load options the commands
// that run a model share (--quantize, --check-tensors).
import * as fs from 'node:fs';
import { fail, quote } from '../errors.js';
import { resolveModel } from '../hub/resolve.js';
import { LOAD_QUANT_TYPES, type LoadQuantType } from '../models/weights.js';
import { KV_TYPES, type KvType } from '../backend/backend.js';
import { resolveAdapter, type LoraSpec } from '../lora/load.js';

export async function resolveModelArg(arg: string): Promise<string> {
  const p = await resolveModel(arg);
  if (fs.existsSync(p)) return p;
  fail(`${arg}: no such model folder or file, and not a hub id (owner/name)`);
}

/** The file an option names, read whole; a missing or unreadable one is a one-line error naming the option and the file. */
export function readOptionFile(option: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    fail(`${option} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** The options of run, serve, bench and logits that change how the weights load (node:util parseArgs). */
export const LOAD_OPTIONS = {
  quantize: { type: 'string' },
  'check-tensors': { type: 'boolean' },
} as const;

export const LOAD_HELP = `  --quantize q8_0|q4_0|q4_k  quantise F32/F16/BF16 matrices as they load (nothing written to disk;
                        the same bytes as qwen-ts quantize --type; norms and biases stay F32). A
                        model already stored quantised loads as stored, with a note.
  --check-tensors       check every value as it loads, as llama.cpp's --check-tensors: F32/F16/BF16
                        elements and each quantised block's f16 scales (d, m / dmin) must be finite;
                        the first NaN or Inf is an error naming tensor and block. Costs about 25 ms
                        of CPU per 0.5 GB of Q8_0 (a few % of a 0.5B model's load), ~0.17 s per GB
                        of F16/BF16.`;

export function quantizeFromArgs(values: { quantize?: string }): LoadQuantType | undefined {
  const q = values.quantize?.toLowerCase();
  if (q === undefined) return undefined;
  if (!(LOAD_QUANT_TYPES as readonly string[]).includes(q)) fail(`--quantize must be one of ${LOAD_QUANT_TYPES.join(', ')}, got ${quote(values.quantize)}`);
  return q as LoadQuantType;
}

/** --ctx-size (LoadOptions.ctxSize). */
const CTX_OPTIONS = { 'ctx-size': { type: 'string' } } as const;

const CTX_HELP = `  --ctx-size N          cap each sequence's context at N tokens (and so its KV-cache memory), as
                        llama.cpp's --ctx-size; at most the model's context (with YaRN rope scaling:
                        factor x original_max_position_embeddings). Default: the model's context.`;

function ctxSizeFromArgs(values: { 'ctx-size'?: string }): number | undefined {
  const v = values['ctx-size'];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim()) || !(Number(v) >= 1) || !Number.isSafeInteger(Number(v))) fail(`--ctx-size must be a positive integer, got ${quote(v)}`);
  return Number(v);
}

/** --cache-type (LoadOptions.cacheType). */
const KV_OPTIONS = { 'cache-type': { type: 'string' } } as const;

const KV_HELP = `  --cache-type f32|f16|q8_0  how the KV cache stores keys and values, as llama.cpp's --cache-type-k/v
                        (both): f16 takes half the memory of f32, q8_0 (head_dim a multiple of 32)
                        34/128; attention reads them as stored. Default f32.`;

function cacheTypeFromArgs(values: { 'cache-type'?: string }): KvType | undefined {
  const v = values['cache-type'];
  if (v === undefined) return undefined;
  const t = v.trim().toLowerCase();
  if (!(KV_TYPES as readonly string[]).includes(t)) fail(`--cache-type must be one of ${KV_TYPES.join(', ')}, got ${quote(v)}`);
  return t as KvType;
}

/**
 * The options of the commands that run sequences (run, serve, logits, bench): --ctx-size and
 * --cache-type, apart from LOAD_OPTIONS because `embed` loads models without them (a parsed flag
 * must never be ignored).
 */
export const SEQ_OPTIONS = { ...CTX_OPTIONS, ...KV_OPTIONS } as const;

export const SEQ_HELP = `${CTX_HELP}\n${KV_HELP}`;

export function seqFromArgs(values: { 'ctx-size'?: string; 'cache-type'?: string }): { ctxSize?: number; cacheType?: KvType } {
  return { ctxSize: ctxSizeFromArgs(values), cacheType: cacheTypeFromArgs(values) };
}

/** --mmproj / --no-mmproj (LoadOptions.mmproj) for the commands that chat: run and serve. */
export const VISION_OPTIONS = { mmproj: { type: 'string' }, 'no-mmproj': { type: 'boolean' } } as const;

export const VISION_HELP = `  --mmproj FILE         the vision tower of a GGUF model (llama.cpp's mmproj GGUF). Default: the one
                        mmproj*.gguf beside the model that fits it; an HF folder reads its own visual.*
  --no-mmproj           load no vision tower (text only)`;

export function mmprojFromArgs(values: { mmproj?: string; 'no-mmproj'?: boolean }): string | false | undefined {
  if (values.mmproj !== undefined && values['no-mmproj']) fail('--mmproj and --no-mmproj contradict each other: give one');
  if (values.mmproj !== undefined && !fs.existsSync(values.mmproj)) fail(`--mmproj ${quote(values.mmproj)}: no such file`);
  return values['no-mmproj'] ? false : values.mmproj;
}

/** --lora / --lora-scale (LoadOptions.lora) for the commands that run one adapter on every sequence: run, logits, bench. */
export const LORA_OPTIONS = { lora: { type: 'string' }, 'lora-scale': { type: 'string' } } as const;

export const LORA_HELP = `  --lora PATH           apply a LoRA adapter without merging it: a PEFT folder (adapter_config.json +
                        adapter_model.safetensors), its .safetensors, a llama.cpp GGUF LoRA file, or
                        a hub id; checked against the model's shapes
  --lora-scale S        multiply the adapter's scale (alpha / r) by S, as llama.cpp's --lora-scaled (default 1)`;

export async function loraFromArgs(values: { lora?: string; 'lora-scale'?: string }): Promise<LoraSpec[] | undefined> {
  const v = values['lora-scale'];
  if (v !== undefined && (v.trim() === '' || !Number.isFinite(Number(v)))) fail(`--lora-scale must be a number, got ${quote(v)}`);
  if (values.lora === undefined) {
    if (v !== undefined) fail('--lora-scale needs --lora');
    return undefined;
  }
  return [{ path: await resolveAdapter(values.lora), scale: v === undefined ? 1 : Number(v), default: true }];
}

/** serve's --lora NAME=PATH (repeatable): named adapters, none the default; a name is unique and not the served model's. */
export async function servedLoras(args: readonly string[] | undefined, modelName: string): Promise<LoraSpec[] | undefined> {
  if (!args?.length) return undefined;
  const specs: LoraSpec[] = [];
  for (const a of args) {
    const eq = a.indexOf('=');
    const name = a.slice(0, eq).trim(),
      p = a.slice(eq + 1).trim();
    if (eq < 1 || !name || !p) fail(`--lora must be NAME=PATH (the name requests give as "model"), got ${quote(a)}`);
    if (name === modelName) fail(`--lora name ${quote(name)} is the served model's own name; give the adapter another`);
    if (specs.some((s) => s.name === name)) fail(`--lora name ${quote(name)} is given twice`);
    specs.push({ name, path: await resolveAdapter(p) });
  }
  return specs;
}
