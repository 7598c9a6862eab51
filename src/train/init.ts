// A fresh LoRA adapter for training, initialised as PEFT does (init_lora_weights=True): A from
// kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(K), 1/sqrt(K)) for fan-in K, and B zero, so the
// adapted model starts equal to the base. Values come from a seeded PRNG (not torch's stream).
import { fail, quote } from '../errors.js';
import { LORA_TARGETS, type LoraAdapter, type LoraModule, loraScale } from '../lora/adapter.js';
import type { QwenConfig } from '../models/config.js';
import { targetShape } from '../lora/targets.js';
import { Rng } from '../generate/sampler.js';

export interface AdapterInit {
  rank: number;
  alpha: number;
  rslora?: boolean;
  /** PEFT module names (`q_proj`, ...); default: all seven linear layers */
  targets?: readonly string[];
  seed: number;
  name?: string;
  baseModel?: string;
}

/** Check and expand a target list (`all-linear` = all seven), naming an unknown module. */
export function parseTargets(list: readonly string[] | undefined): string[] {
  if (list === undefined || list.length === 0 || (list.length === 1 && list[0] === 'all-linear')) return [...LORA_TARGETS];
  const out: string[] = [];
  for (const t of list) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) fail(`unknown target module ${quote(t)}: the targets are ${LORA_TARGETS.join(', ')} (or all-linear)`);
    if (!out.includes(t)) out.push(t);
  }
  // PEFT's order, so the same set gives the same adapter whatever order it was named in
  return LORA_TARGETS.filter((t) => out.includes(t));
}

/** A PEFT-initialised adapter over every layer's target modules (lora/targets.ts says which a model has). */
export function initAdapter(c: QwenConfig, o: AdapterInit): LoraAdapter {
  if (!Number.isInteger(o.rank) || o.rank < 1) fail(`the LoRA rank must be a positive integer, got ${quote(o.rank)}`);
  if (!Number.isFinite(o.alpha) || o.alpha <= 0) fail(`lora alpha must be a positive number, got ${quote(o.alpha)}`);
  const targets = parseTargets(o.targets);
  const rand = new Rng(o.seed);
  const modules: LoraModule[] = [];
  for (let layer = 0; layer < c.num_hidden_layers; layer++) {
    for (const target of targets) {
      // MoE layers have no dense FFN to adapt: such targets are skipped there, as PEFT matches none
      const shape = targetShape(c, layer, target);
      if (!shape) continue;
      const N = shape.n,
        K = shape.k;
      const a = new Float32Array(o.rank * K);
      const bound = 1 / Math.sqrt(K);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rand.next() - 1) * bound;
      modules.push({
        name: `model.layers.${layer}.${shape.path}`,
        layer,
        target,
        r: o.rank,
        inFeatures: K,
        outFeatures: N,
        scale: loraScale(o.alpha, o.rank, o.rslora ?? false),
        a,
        b: new Float32Array(N * o.rank),
      });
    }
  }
  if (!modules.length) fail(`${c.model_type} models have no ${targets.join(' / ')} module that LoRA fine-tuning can adapt (Qwen2, Qwen2.5 and Qwen3 models can)`);
  return {
    name: o.name ?? 'adapter',
    config: { r: o.rank, lora_alpha: o.alpha, use_rslora: o.rslora ?? false, target_modules: targets, ...(o.baseModel ? { base_model_name_or_path: o.baseModel } : {}) },
    modules,
  };
}
