// PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors, read and written as PEFT
// does (huggingface/peft src/peft/tuners/lora/{config,model,layer}.py, utils/save_and_load.py).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail, quote } from '../errors.js';
import type { DType } from '../formats/dtype.js';
import { dequantize } from '../formats/quant/index.js';
import { openSafetensors } from '../formats/safetensors.js';
import { writeSafetensors, type StTensorOut } from '../formats/safetensors_writer.js';
import { loraScale, type LoraAdapter, type LoraConfig, type LoraModule } from './adapter.js';

export const PEFT_CONFIG = 'adapter_config.json';
export const PEFT_WEIGHTS = 'adapter_model.safetensors';
// PEFT's state-dict prefix for a causal LM (PeftModelForCausalLM.base_model.model = the HF model)
const PREFIX = 'base_model.model.';
// `model.layers.N.` (or a multimodal checkpoint's `model.language_model.layers.N.`)
const LAYER = /^model\.(?:language_model\.)?layers\.(\d+)\.(.+)$/;

// the linear modules of every Qwen architecture (dense, MoE, Qwen3.5 / Qwen3-Next DeltaNet): a target name outside these is a mistake
const QWEN_LINEAR = new Set([
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
  'gate',
  'shared_expert_gate',
  'in_proj_qkv',
  'in_proj_z',
  'in_proj_a',
  'in_proj_b',
  'in_proj_qkvz',
  'in_proj_ba',
  'out_proj',
  'lm_head',
  'embed_tokens',
]);

/** The parsed adapter_config.json: what decides which modules exist and their rank and alpha. */
export interface PeftConfigJson {
  r: number;
  lora_alpha: number;
  use_rslora: boolean;
  /** a list of names / name suffixes, or a regex (full match), or `all-linear` */
  target_modules: string[] | string;
  exclude_modules?: string[] | string;
  layers_to_transform?: number[];
  layers_pattern?: string[];
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  base_model_name_or_path?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(file: string, key: string, v: unknown): string[] | string | undefined {
  if (v == null) return undefined;
  if (typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string'))) return v as string[] | string;
  fail(`${file}: ${key} must be a string or a list of strings, got ${quote(v)}`);
}

function numberMap(file: string, key: string, v: unknown, integer: boolean): Record<string, number> {
  if (v == null) return {};
  if (!isObject(v)) fail(`${file}: ${key} must be an object of module name -> number, got ${quote(v)}`);
  for (const [k, n] of Object.entries(v)) {
    if (typeof n !== 'number' || !Number.isFinite(n) || (integer && (!Number.isInteger(n) || n < 1))) {
      fail(`${file}: ${key}[${quote(k)}] must be ${integer ? 'a positive integer' : 'a number'}, got ${quote(n)}`);
    }
  }
  return v as Record<string, number>;
}

/** Parse and check adapter_config.json; features qwen.ts does not apply are refused by name. */
export function parsePeftConfig(file: string, text: string): PeftConfigJson {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    fail(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(j)) fail(`${file}: not a JSON object`);
  const peftType = j.peft_type ?? 'LORA';
  if (peftType !== 'LORA') fail(`${file}: peft_type is ${quote(peftType)}; qwen.ts reads LoRA adapters (peft_type "LORA") only`);
  const r = j.r ?? 8;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail(`${file}: r (the LoRA rank) must be a positive integer, got ${quote(r)}`);
  const alpha = j.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail(`${file}: lora_alpha must be a number, got ${quote(alpha)}`);
  const refuse = (what: string, why: string) => fail(`${file}: ${what}; ${why}`);
  const mts = j.modules_to_save;
  if (Array.isArray(mts) ? mts.length > 0 : mts != null) {
    refuse(`modules_to_save is ${quote(mts)}`, 'adapters that replace whole modules (modules_to_save) are not supported');
  }
  if (j.bias != null && j.bias !== 'none') refuse(`bias is ${quote(j.bias)}`, 'only bias "none" is supported (trained biases are not applied)');
  if (j.lora_bias === true) refuse('lora_bias is true', 'a bias on lora_B is not supported');
  if (j.fan_in_fan_out === true) refuse('fan_in_fan_out is true', 'that layout is for GPT-2-style Conv1D layers, which Qwen models do not have');
  if (j.use_dora === true) refuse('use_dora is true', 'DoRA adapters are not supported');
  if (Array.isArray(j.target_parameters) && j.target_parameters.length) refuse(`target_parameters is ${quote(j.target_parameters)}`, 'LoRA on bare parameters is not supported');
  if (Array.isArray(j.alora_invocation_tokens) && j.alora_invocation_tokens.length) refuse('alora_invocation_tokens is set', 'activated LoRA (aLoRA) is not supported');
  if (Array.isArray(j.layer_replication) && j.layer_replication.length) refuse('layer_replication is set', 'layer replication is not supported');
  if (j.trainable_token_indices != null) refuse('trainable_token_indices is set', 'trainable tokens are not supported');
  if (j.use_qalora === true) refuse('use_qalora is true', 'QA-LoRA is not supported');
  const rslora = j.use_rslora ?? false;
  if (typeof rslora !== 'boolean') fail(`${file}: use_rslora must be true or false, got ${quote(rslora)}`);
  const targets = strings(file, 'target_modules', j.target_modules);
  if (targets === undefined || targets.length === 0) fail(`${file}: target_modules is missing or empty`);
  let layers: number[] | undefined;
  const ltt = j.layers_to_transform;
  if (typeof ltt === 'number') layers = [ltt];
  else if (Array.isArray(ltt) && ltt.length) layers = ltt as number[];
  if (layers && !layers.every((n) => Number.isInteger(n) && n >= 0)) fail(`${file}: layers_to_transform must be layer indices, got ${quote(ltt)}`);
  const lp = strings(file, 'layers_pattern', j.layers_pattern);
  const out: PeftConfigJson = {
    r,
    lora_alpha: alpha,
    use_rslora: rslora,
    target_modules: targets,
    rank_pattern: numberMap(file, 'rank_pattern', j.rank_pattern, true),
    alpha_pattern: numberMap(file, 'alpha_pattern', j.alpha_pattern, false),
  };
  const ex = strings(file, 'exclude_modules', j.exclude_modules);
  if (ex !== undefined) out.exclude_modules = ex;
  if (layers) out.layers_to_transform = layers;
  if (lp?.length) out.layers_pattern = typeof lp === 'string' ? [lp] : lp;
  if (typeof j.base_model_name_or_path === 'string' && j.base_model_name_or_path) out.base_model_name_or_path = j.base_model_name_or_path;
  return out;
}

function fullMatch(pattern: string, s: string): boolean {
  try {
    return new RegExp(`^(?:${pattern})$`).test(s);
  } catch {
    return pattern === s;
  }
}

/**
 * Whether PEFT puts a LoRA layer on module `key` (`model.layers.3.self_attn.q_proj`):
 * check_target_module_exists in tuners_utils.py (`all-linear` stands for every linear layer of
 * the decoder, which for the modules an adapter file holds is all of them).
 */
export function peftTargets(c: PeftConfigJson, key: string): boolean {
  const ex = c.exclude_modules;
  if (ex !== undefined && (typeof ex === 'string' ? fullMatch(ex, key) : ex.some((e) => key === e || key.endsWith(`.${e}`)))) return false;
  const t = c.target_modules;
  if (typeof t === 'string') return t.toLowerCase() === 'all-linear' || fullMatch(t, key);
  if (t.includes(key)) return true;
  if (!t.some((e) => key.endsWith(`.${e}`))) return false;
  if (!c.layers_to_transform) return true;
  const m = c.layers_pattern?.length ? c.layers_pattern.map((p) => new RegExp(`^.*?\\.${p}\\.(\\d+)\\.`).exec(key)).find((x) => x) : /^.*?\.[^.]*\.(\d+)\./.exec(key);
  return !!m && c.layers_to_transform.includes(Number(m[1]));
}

/** rank_pattern / alpha_pattern lookup as PEFT's get_pattern_key: a key matches a module name
 * that ends with it (as a regex), after a dot or as the whole name. */
export function patternValue(pattern: Record<string, number>, key: string): number | undefined {
  for (const [k, v] of Object.entries(pattern)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${k})$`);
    } catch {
      continue;
    }
    if (re.test(key)) return v;
  }
  return undefined;
}

/** Where an adapter's config and weights are: a folder, its adapter_config.json, or its .safetensors. */
export function peftPaths(p: string): { config: string; weights: string } {
  if (!fs.existsSync(p)) fail(`${p}: no such file or folder`);
  const dir = fs.statSync(p).isDirectory() ? p : path.dirname(p);
  const config = path.join(dir, PEFT_CONFIG);
  let weights = p.endsWith('.safetensors') ? p : path.join(dir, PEFT_WEIGHTS);
  if (!fs.existsSync(config)) fail(`${p}: no ${PEFT_CONFIG} ${p === dir ? 'in this folder' : 'next to it'}; a PEFT LoRA adapter has one`);
  if (!fs.existsSync(weights)) {
    if (fs.existsSync(path.join(dir, 'adapter_model.bin'))) fail(`${dir}: the adapter's weights are in adapter_model.bin (a pickle, which qwen.ts does not read); save them as ${PEFT_WEIGHTS}`);
    fail(`${dir}: no ${PEFT_WEIGHTS} in this folder`);
  }
  if (p === config) weights = path.join(dir, PEFT_WEIGHTS);
  return { config, weights };
}

/** Read a PEFT LoRA adapter (folder, adapter_config.json or adapter_model.safetensors). */
export function readPeftAdapter(p: string, name = path.basename(path.resolve(fs.existsSync(p) && !fs.statSync(p).isDirectory() ? path.dirname(p) : p))): LoraAdapter {
  const files = peftPaths(p);
  const c = parsePeftConfig(files.config, fs.readFileSync(files.config, 'utf8'));
  const src = openSafetensors(files.weights);
  try {
    const found = new Map<string, { a?: string; b?: string }>();
    for (const key of src.tensors.keys()) {
      const m = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(key);
      if (!m) {
        if (/lora_magnitude_vector/.test(key)) fail(`${files.weights}: tensor ${quote(key)} is a DoRA magnitude; DoRA adapters are not supported`);
        if (/modules_to_save/.test(key)) fail(`${files.weights}: tensor ${quote(key)} replaces a whole module (modules_to_save), which is not supported`);
        fail(`${files.weights}: tensor ${quote(key)} is not a LoRA A or B matrix (expected ${PREFIX}<module>.lora_A.weight / .lora_B.weight)`);
      }
      const e = found.get(m[1]!) ?? {};
      e[m[2] === 'A' ? 'a' : 'b'] = key;
      found.set(m[1]!, e);
    }
    if (!found.size) fail(`${files.weights}: no LoRA tensors in this file`);
    const modules: LoraModule[] = [];
    for (const [raw, { a, b }] of found) {
      const lm = LAYER.exec(raw); // raw: the module's name in the model PEFT adapted, which target_modules and the patterns match
      if (!lm) fail(`${files.weights}: module ${quote(raw)} is not in a decoder layer (model.layers.N...); only decoder layers' linear modules can be adapted`);
      const name = `model.layers.${lm[1]}.${lm[2]}`;
      if (!a || !b) fail(`${files.weights}: module ${quote(raw)} has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}`);
      const ia = src.tensors.get(a)!,
        ib = src.tensors.get(b)!;
      if (ia.shape.length !== 2 || ib.shape.length !== 2 || ia.shape[0] !== ib.shape[1]) {
        fail(`${files.weights}: module ${quote(raw)}: lora_A is [${ia.shape.join(', ')}] and lora_B [${ib.shape.join(', ')}]; they must be [r, in] and [out, r]`);
      }
      const r = ia.shape[0]!;
      if (r < 1) fail(`${files.weights}: module ${quote(raw)} has rank 0`);
      if (!peftTargets(c, raw)) fail(`${files.weights}: module ${quote(raw)} is not one that ${files.config}'s target_modules (${quote(c.target_modules)}) adapts`);
      const want = patternValue(c.rank_pattern, raw) ?? c.r;
      if (r !== want) fail(`${files.weights}: module ${quote(raw)} has rank ${r}, but ${files.config} gives it rank ${want} (r / rank_pattern)`);
      const alpha = patternValue(c.alpha_pattern, raw) ?? c.lora_alpha;
      modules.push({
        name,
        layer: Number(lm[1]),
        target: name.slice(name.lastIndexOf('.') + 1),
        r,
        inFeatures: ia.shape[1]!,
        outFeatures: ib.shape[0]!,
        scale: loraScale(alpha, r, c.use_rslora),
        a: floats(src, a, ia.dtype, r * ia.shape[1]!),
        b: floats(src, b, ib.dtype, ib.shape[0]! * r),
      });
    }
    modules.sort((x, y) => x.layer - y.layer || x.name.localeCompare(y.name));
    if (Array.isArray(c.target_modules)) {
      // PEFT fails on a target_modules entry that matches nothing in the model; here: nothing in the file, and no Qwen module's name
      for (const t of c.target_modules) {
        const used = modules.some((m) => m.name === t || m.name.endsWith(`.${t}`));
        if (!used && !QWEN_LINEAR.has(t.slice(t.lastIndexOf('.') + 1))) fail(`${files.config}: target_modules names ${quote(t)}, which no Qwen model has (and the adapter has no weights for)`);
      }
    }
    const config: LoraConfig = {
      r: c.r,
      lora_alpha: c.lora_alpha,
      use_rslora: c.use_rslora,
      target_modules: [...new Set(modules.map((m) => m.target))].sort(),
    };
    if (c.base_model_name_or_path) config.base_model_name_or_path = c.base_model_name_or_path;
    return { name, config, modules };
  } finally {
    src.close();
  }
}

function floats(src: ReturnType<typeof openSafetensors>, key: string, dtype: DType, n: number): Float32Array {
  const bytes = new Uint8Array(src.tensors.get(key)!.byteLength);
  src.readInto(key, bytes);
  const out = new Float32Array(n);
  dequantize(dtype, bytes, 0, out, 0, n);
  return out;
}

/** A module's lora_alpha given its scale (the inverse of loraScale), rounded off float noise. */
function alphaOf(m: LoraModule, rslora: boolean): number {
  const a = rslora ? m.scale * Math.sqrt(m.r) : m.scale * m.r;
  const round = Math.round(a);
  return Math.abs(a - round) <= 1e-9 * Math.max(1, Math.abs(a)) ? round : a;
}

/**
 * Write `adapter` as PEFT's save_pretrained does: adapter_config.json (LoraConfig's fields, sorted,
 * 2-space indent; ranks and alphas that differ from r / lora_alpha in rank_pattern / alpha_pattern
 * under each module's full name) and adapter_model.safetensors (F32, PEFT's tensor names).
 */
export function writePeftAdapter(dir: string, adapter: LoraAdapter): void {
  const c = adapter.config;
  if (!adapter.modules.length) fail(`adapter ${quote(adapter.name)} has no modules to write`);
  const rankPattern: Record<string, number> = {},
    alphaPattern: Record<string, number> = {};
  const tensors: StTensorOut[] = [];
  for (const m of adapter.modules) {
    if (m.r < 1 || m.a.length !== m.r * m.inFeatures || m.b.length !== m.outFeatures * m.r) {
      fail(`adapter ${quote(adapter.name)}: module ${quote(m.name)} has r = ${m.r}, A of ${m.a.length} and B of ${m.b.length} values; expected ${m.r} x ${m.inFeatures} and ${m.outFeatures} x ${m.r}`);
    }
    if (m.r !== c.r) rankPattern[m.name] = m.r;
    const alpha = alphaOf(m, c.use_rslora);
    if (Math.abs(alpha - c.lora_alpha) > 1e-6 * Math.max(1, Math.abs(alpha))) alphaPattern[m.name] = alpha;
    const bytes = (f: Float32Array) => new Uint8Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength));
    tensors.push({ name: `${PREFIX}${m.name}.lora_A.weight`, dtype: 'F32', shape: [m.r, m.inFeatures], data: bytes(m.a) });
    tensors.push({ name: `${PREFIX}${m.name}.lora_B.weight`, dtype: 'F32', shape: [m.outFeatures, m.r], data: bytes(m.b) });
  }
  const layers = [...new Set(adapter.modules.map((m) => m.layer))].sort((x, y) => x - y);
  const json: Record<string, unknown> = {
    alpha_pattern: alphaPattern,
    auto_mapping: null,
    base_model_name_or_path: c.base_model_name_or_path ?? null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    // every layer that has a module: PEFT then creates no layers the file has no weights for
    layers_to_transform: layers,
    lora_alpha: c.lora_alpha,
    lora_dropout: 0,
    modules_to_save: null,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: rankPattern,
    revision: null,
    target_modules: [...new Set(adapter.modules.map((m) => m.target))].sort(),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: c.use_rslora,
  };
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, PEFT_WEIGHTS), tensors);
  fs.writeFileSync(path.join(dir, PEFT_CONFIG), `${JSON.stringify(json, null, 2)}\n`);
}
