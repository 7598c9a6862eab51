// Adapters from a path or a hub id onto a loaded model: PEFT folders / files or GGUF LoRA files,
// checked against the model (shapes; base_model_name_or_path against the model's hub id).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail, quote } from '../errors.js';
import { resolveModel } from '../hub/resolve.js';
import type { PullOptions } from '../hub/pull.js';
import type { CausalLM } from '../models/model.js';
import type { LoraAdapter } from './adapter.js';
import { LoraSet } from './apply.js';
import { readGgufLora } from './gguf_lora.js';
import { readPeftAdapter } from './peft.js';

/** Read an adapter from a local path: a GGUF LoRA file, or a PEFT folder / adapter file. */
export function readAdapter(p: string, name = hubRepoOf(p)): LoraAdapter {
  if (!fs.existsSync(p)) fail(`${p}: no such LoRA adapter file or folder`);
  if (/\.gguf$/i.test(p) && fs.statSync(p).isFile()) return readGgufLora(p, name);
  return readPeftAdapter(p, name);
}

/** A local path or a hub id (`owner/name`, pulled into the cache like a model) to a local path. */
export async function resolveAdapter(idOrPath: string, opts: PullOptions = {}): Promise<string> {
  return resolveModel(idOrPath, opts);
}

/** The hub repo (`owner/name`) a model path lies in, when it is in a hub cache (`models--owner--name`). */
export function hubRepoOf(p: string): string | undefined {
  const m = /(?:^|[\\/])models--([^\\/]+?)--([^\\/]+)[\\/]snapshots[\\/]/.exec(path.resolve(p));
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/** An adapter to load with a model (LoadOptions.lora, the CLI's --lora). */
export interface LoraSpec {
  /** a local GGUF LoRA file or PEFT folder / file */
  path: string;
  /** what requests call it (default: the file or folder name) */
  name?: string;
  scale?: number;
  /** rows that name no adapter use this one (run, logits, bench --lora) */
  default?: boolean;
}

/** Load each spec's adapter onto `model` (ids 1, 2, ... in order). */
export function loadLoras(model: CausalLM, specs: readonly LoraSpec[], modelPath: string, onNote?: (m: string) => void): void {
  for (const s of specs) {
    const id = attachLora(model, readAdapter(s.path, s.name), { scale: s.scale, model: modelPath, onNote });
    if (s.default) model.lora!.fallback = id;
  }
}

export interface AttachOptions {
  /** multiplies every module's scale (llama.cpp's --lora-scaled) */
  scale?: number;
  /** the base model's hub id or path, compared with the adapter's base_model_name_or_path */
  model?: string;
  onNote?: (m: string) => void;
}

/**
 * Load `adapter` onto `model` (its LoraSet is created on first use); returns the adapter's id for
 * BatchEntry.adapter. A base_model_name_or_path that is a hub id other than the model's is a note:
 * the shapes fit (they are checked), so it may be a sibling fine-tune, which works.
 */
export function attachLora(model: CausalLM, adapter: LoraAdapter, o: AttachOptions = {}): number {
  const scale = o.scale ?? 1;
  if (!Number.isFinite(scale)) fail(`--lora-scale must be a number, got ${scale}`);
  model.lora ??= new LoraSet(model.backend, model.config);
  const id = model.lora.add(adapter, scale);
  const want = adapter.config.base_model_name_or_path;
  const have = o.model && (hubRepoOf(o.model) ?? (fs.existsSync(o.model) ? undefined : o.model.replace(/^(hf|ms|modelscope):/, '').replace(/@.*$/, '')));
  if (want && have && /^[\w.-]+\/[\w.-]+$/.test(want) && want.toLowerCase() !== have.toLowerCase()) {
    (o.onNote ?? ((m) => process.stderr.write(`note: ${m}\n`)))(`LoRA adapter ${quote(adapter.name)} was trained on ${quote(want)}; this model is ${quote(have)} (the shapes fit, so it is applied)`);
  }
  return id;
}
