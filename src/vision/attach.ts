// The vision tower that goes with a language model (CausalLM.vision): an mmproj GGUF named by
// --mmproj (LoadOptions.mmproj), or found beside a GGUF model (an `mmproj*.gguf` in its folder whose
// projection_dim is the model's hidden size, as llama.cpp's and the hub's repositories ship them),
// or the `visual.*` tensors of an HF folder. Only a model with M-RoPE sections (Qwen2.5-VL's
// language model, Qwen3.5) can take image rows; a tower found by itself that does not load is a
// note, and the model still runs text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { fail } from '../errors.js';
import { openGguf } from '../formats/gguf.js';
import type { CausalLM } from '../models/model.js';
import { loadVisionTower } from './tower.js';
import type { VisionEncoder } from './types.js';

const MMPROJ = /^mmproj.*\.gguf$/i;

/** `clip.vision.projection_dim` of an mmproj GGUF (undefined when unreadable or absent). */
function projectionDim(file: string): number | undefined {
  try {
    const g = openGguf(file);
    try {
      const v = g.metadata.get('clip.vision.projection_dim');
      return typeof v === 'number' ? v : undefined;
    } finally {
      g.close();
    }
  } catch {
    return undefined;
  }
}

/** The last `-`-separated part of a file's stem: its type as llama.cpp's and the hub's names end
 * (`model-f32.gguf`, `Qwen2.5-VL-3B-Instruct-Q8_0.gguf`). */
const typeTag = (f: string) => path.basename(f, path.extname(f)).split('-').pop()!.toLowerCase();

/**
 * The mmproj beside the GGUF model `modelPath` (a file, or the folder holding it): the one
 * `mmproj*.gguf` whose rows are `hidden` wide (of several, the one whose type tag is the model's:
 * `mmproj-f32.gguf` for `model-f32.gguf`); undefined when there is none; an error naming them when
 * several fit (then --mmproj says which).
 */
function findMmproj(modelPath: string, hidden: number): string | undefined {
  const dir = fs.statSync(modelPath).isDirectory() ? modelPath : path.dirname(modelPath);
  const fits = fs
    .readdirSync(dir)
    .filter((f) => MMPROJ.test(f) && path.join(dir, f) !== path.resolve(modelPath))
    .map((f) => path.join(dir, f))
    .filter((f) => projectionDim(f) === hidden);
  const same = fits.filter((f) => typeTag(f) === typeTag(modelPath));
  if (fits.length > 1 && same.length === 1) return same[0];
  if (fits.length > 1) fail(`${dir}: ${fits.length} mmproj files fit this model (${fits.map((f) => path.basename(f)).join(', ')}); choose one with --mmproj`);
  return fits[0];
}

/** Whether the HF folder `dir` holds a vision tower (config.json's vision_config). */
function hfHasTower(dir: string): boolean {
  try {
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    return typeof c.vision_config === 'object' && c.vision_config !== null;
  } catch {
    return false;
  }
}

export interface AttachOptions {
  /** an mmproj GGUF (or an HF folder with the tower) to load: an error when it does not fit; false: none */
  mmproj?: string | false;
  onNote?: (note: string) => void;
}

/**
 * Load the tower for `model` (loaded from `modelPath`, format `format`) into model.vision: the
 * explicit mmproj, else one found beside it. Returns the tower, or undefined when there is none.
 */
export function attachVision(model: CausalLM, modelPath: string, format: 'hf' | 'gguf', be: Backend, o: AttachOptions = {}): VisionEncoder | undefined {
  const c = model.config;
  if (o.mmproj === false) return undefined;
  if (o.mmproj !== undefined) {
    if (!c.mrope_section) fail(`--mmproj ${o.mmproj}: this ${c.model_type} model takes no images (it has no M-RoPE sections; a Qwen2.5-VL or Qwen3.5 language model has them)`);
    if (!fs.existsSync(o.mmproj)) fail(`--mmproj ${o.mmproj}: no such file`);
    return (model.vision = loadVisionTower(o.mmproj, be, c.hidden_size));
  }
  if (!c.mrope_section) return undefined;
  let found: string | undefined;
  try {
    found = format === 'gguf' ? findMmproj(modelPath, c.hidden_size) : hfHasTower(modelPath) ? modelPath : undefined;
  } catch (e) {
    o.onNote?.(`${(e as Error).message}: the model runs without images`);
    return undefined;
  }
  if (!found) return undefined;
  try {
    return (model.vision = loadVisionTower(found, be, c.hidden_size));
  } catch (e) {
    o.onNote?.(`the vision tower ${found} did not load (${(e as Error).message}): the model runs without images`);
    return undefined;
  }
}
