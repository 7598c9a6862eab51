// llama.cpp's GGUF LoRA adapters (convert_lora_to_gguf.py writes them, src/llama-adapter.cpp reads
// them): general.type = adapter, adapter.type = lora, adapter.lora.alpha (f32), and per adapted
// weight `blk.N.attn_q.weight.lora_a` [r, K] and `.lora_b` [N, r] (numpy order, as PEFT's A and B).
// llama.cpp's scale per weight: alpha / r (r from lora_b), or 1 when alpha is 0 (times the user's).
import * as path from 'node:path';
import { fail, quote } from '../errors.js';
import { openGguf } from '../formats/gguf.js';
import { writeGguf, type GgufKV, type GgufTensorOut } from '../formats/gguf_writer.js';
import { dequantize } from '../formats/quant/index.js';
import type { ModelType } from '../models/config.js';
import { ggufToHf, hfToGguf } from '../models/weights.js';
import type { LoraAdapter, LoraModule } from './adapter.js';

/** GGUF general.architecture values of the architectures LoRA applies to, and their model_type. */
const ARCHS: Record<string, ModelType> = { qwen2: 'qwen2', qwen3: 'qwen3', qwen2moe: 'qwen2_moe', qwen3moe: 'qwen3_moe', qwen35: 'qwen3_5_text' };

/** The model_type of a llama.cpp architecture name that LoRA applies to (qwen2, qwen3, qwen2moe, qwen3moe, qwen35). */
export function loraModelType(arch: string): ModelType | undefined {
  return Object.hasOwn(ARCHS, arch) ? ARCHS[arch] : undefined;
}

/** llama.cpp's architecture name for a model_type that LoRA applies to. */
export function ggufArch(t: ModelType): string {
  const a = Object.keys(ARCHS).find((k) => ARCHS[k] === t);
  if (!a) fail(`LoRA adapters apply to ${Object.values(ARCHS).join(', ')} models, not ${t}`);
  return a;
}

/** Read a GGUF LoRA adapter; modules get PEFT's (HF) names through the loader's name map. */
export function readGgufLora(file: string, name = path.basename(file).replace(/\.gguf$/i, '')): LoraAdapter {
  const g = openGguf(file);
  try {
    const meta = (k: string) => g.metadata.get(k);
    if (meta('general.type') !== 'adapter') fail(`${file}: general.type is ${quote(meta('general.type') ?? '(missing)')}, not 'adapter'; this is not a LoRA adapter (a model file goes to --model)`);
    if (meta('adapter.type') !== 'lora') fail(`${file}: adapter.type is ${quote(meta('adapter.type') ?? '(missing)')}; qwen.ts reads LoRA adapters ('lora') only`);
    if (meta('adapter.alora.invocation_tokens') !== undefined) fail(`${file}: an activated LoRA (adapter.alora.invocation_tokens) is not supported`);
    const arch = String(meta('general.architecture'));
    const type = Object.hasOwn(ARCHS, arch) ? ARCHS[arch]! : undefined;
    if (!type) fail(`${file}: general.architecture is ${quote(arch)}; LoRA adapters apply to ${Object.keys(ARCHS).join(', ')} models`);
    const alphaV = meta('adapter.lora.alpha') ?? 0;
    if (typeof alphaV !== 'number' || !Number.isFinite(alphaV)) fail(`${file}: adapter.lora.alpha is ${quote(alphaV)}, not a number`);
    const pairs = new Map<string, { a?: string; b?: string }>();
    for (const t of g.tensors.keys()) {
      const m = /^(.+)\.lora_([ab])$/.exec(t);
      if (!m) fail(`${file}: tensor ${quote(t)} is not a LoRA A or B matrix (llama.cpp names them <weight>.lora_a / .lora_b)`);
      const e = pairs.get(m[1]!) ?? {};
      e[m[2] as 'a' | 'b'] = t;
      pairs.set(m[1]!, e);
    }
    if (!pairs.size) fail(`${file}: no LoRA tensors in this file`);
    const modules: LoraModule[] = [];
    for (const [weight, { a, b }] of pairs) {
      if (!a || !b) fail(`${file}: ${quote(weight)} has lora_${a ? 'a' : 'b'} but no lora_${a ? 'b' : 'a'}`);
      const hf = ggufToHf(weight, type);
      const lm = hf && /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hf);
      if (!lm) fail(`${file}: ${quote(weight)} is not a linear module of a ${arch} decoder layer; qwen.ts applies LoRA to those only`);
      const ia = g.tensors.get(a)!,
        ib = g.tensors.get(b)!;
      if (ia.shape.length !== 2 || ib.shape.length !== 2 || ia.shape[0] !== ib.shape[1]) {
        fail(`${file}: ${quote(weight)}: lora_a is [${ia.shape.join(', ')}] and lora_b [${ib.shape.join(', ')}] (numpy order); they must be [r, in] and [out, r]`);
      }
      const r = ib.shape[1]!;
      if (r < 1) fail(`${file}: ${quote(weight)} has rank 0`);
      const read = (info: typeof ia) => {
        const bytes = new Uint8Array(info.byteLength);
        g.readInto(info.name, bytes);
        const out = new Float32Array(info.shape[0]! * info.shape[1]!);
        dequantize(info.dtype, bytes, 0, out, 0, out.length);
        return out;
      };
      const modName = hf.slice(0, -'.weight'.length);
      modules.push({
        name: modName,
        layer: Number(lm[1]),
        target: modName.slice(modName.lastIndexOf('.') + 1),
        r,
        inFeatures: ia.shape[1]!,
        outFeatures: ib.shape[0]!,
        scale: alphaV ? alphaV / r : 1,
        a: read(ia),
        b: read(ib),
      });
    }
    modules.sort((x, y) => x.layer - y.layer || x.name.localeCompare(y.name));
    const ranks = modules.map((m) => m.r);
    const r = Math.max(...ranks);
    return {
      name,
      config: { r, lora_alpha: alphaV || r, use_rslora: false, target_modules: [...new Set(modules.map((m) => m.target))].sort() },
      modules,
    };
  } finally {
    g.close();
  }
}

/**
 * Write `adapter` as a GGUF LoRA that llama.cpp loads onto a `type` model (general.architecture
 * must match the model's). One alpha serves every weight when each module's scale is alpha / r
 * (plain LoRA); otherwise (rslora with several ranks, alpha_pattern) alpha is 0, llama.cpp's
 * "scale 1", and each module's scale is folded into its B.
 */
export function exportGgufLora(adapter: LoraAdapter, file: string, type: ModelType): void {
  const arch = ggufArch(type);
  const ms = adapter.modules;
  if (!ms.length) fail(`adapter ${quote(adapter.name)} has no modules to export`);
  const alpha = ms[0]!.scale * ms[0]!.r;
  const uniform = ms.every((m) => Math.abs(m.scale * m.r - alpha) <= 1e-6 * Math.abs(alpha)) && alpha !== 0 && Math.fround(alpha) === alpha;
  const tensors: GgufTensorOut[] = [];
  const bytes = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  for (const m of ms) {
    const g = hfToGguf(`${m.name}.weight`, type);
    if (!g) fail(`adapter ${quote(adapter.name)}: module ${quote(m.name)} has no llama.cpp name in ${arch} models`);
    const b = uniform ? m.b : m.b.map((v) => v * m.scale);
    tensors.push({ name: `${g}.lora_a`, dtype: 'F32', shape: [m.r, m.inFeatures], data: bytes(m.a) });
    tensors.push({ name: `${g}.lora_b`, dtype: 'F32', shape: [m.outFeatures, m.r], data: bytes(b) });
  }
  const metadata: GgufKV[] = [
    { key: 'general.architecture', type: 'str', value: arch },
    { key: 'general.type', type: 'str', value: 'adapter' },
    { key: 'general.name', type: 'str', value: adapter.name },
    { key: 'adapter.type', type: 'str', value: 'lora' },
    { key: 'adapter.lora.alpha', type: 'f32', value: uniform ? alpha : 0 },
  ];
  writeGguf(file, { metadata, tensors });
}
