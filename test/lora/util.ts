// Random LoRA adapters for a model's shapes (test fixtures: written as PEFT / GGUF by the code under test).
import type { Backend } from '../../src/backend/backend.js';
import type { LoraAdapter, LoraModule } from '../../src/lora/adapter.js';
import { mergedSource } from '../../src/lora/merge.js';
import { openModelFiles } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/model.js';
import { ARCHITECTURES } from '../../src/models/registry.js';
import { WeightLoader } from '../../src/models/weights.js';
import { LORA_TARGETS, loraScale } from '../../src/lora/adapter.js';
import { targetShape } from '../../src/lora/targets.js';
import type { QwenConfig } from '../../src/models/config.js';
import { rng } from '../helpers.js';

export interface RandomAdapterOptions {
  r?: number;
  alpha?: number;
  rslora?: boolean;
  targets?: readonly string[];
  /** per-module rank (full module name -> r), as PEFT's rank_pattern */
  ranks?: Record<string, number>;
  /** values of A and B drawn from [-amp, amp] */
  amp?: number;
  seed?: number;
}

/** A LoRA adapter on every layer of config c, A and B uniform in [-amp, amp] (B not zero: the adapter changes logits). */
export function randomAdapter(c: QwenConfig, o: RandomAdapterOptions = {}): LoraAdapter {
  const r = o.r ?? 4,
    alpha = o.alpha ?? 8,
    rslora = o.rslora ?? false,
    amp = o.amp ?? 0.1;
  const rand = rng(o.seed ?? 1);
  const fill = (n: number) => Float32Array.from({ length: n }, () => (2 * rand() - 1) * amp);
  const targets = o.targets ?? LORA_TARGETS;
  const modules: LoraModule[] = [];
  for (let layer = 0; layer < c.num_hidden_layers; layer++) {
    for (const target of targets) {
      const shape = targetShape(c, layer, target);
      if (!shape) {
        if (Array.from({ length: c.num_hidden_layers }, (_, l) => targetShape(c, l, target)).some((s) => s)) continue; // not in this layer (Qwen3.5's linear-attention layers)
        throw new Error(`no module ${target} in ${c.model_type}`);
      }
      const name = `model.layers.${layer}.${shape.path}`;
      const mr = o.ranks?.[name] ?? r;
      modules.push({ name, layer, target, r: mr, inFeatures: shape.k, outFeatures: shape.n, scale: loraScale(alpha, mr, rslora), a: fill(mr * shape.k), b: fill(shape.n * mr) });
    }
  }
  return { name: 'random', config: { r, lora_alpha: alpha, use_rslora: rslora, target_modules: [...targets] }, modules };
}

/** Logits at every position of `ids` (one sequence, one pass), rows run with `adapter` (0: the base model). */
export function promptLogits(m: CausalLM, ids: readonly number[], adapter = 0): Float32Array {
  return Float32Array.from(
    m.forward(
      ids.map((token, pos) => ({ token, pos, seq: 0, logits: true, adapter })),
      [m.newCache(64)],
    ),
  );
}

/** The model at `file` with `adapter` merged into its weights in float64, held as F32 (mergedSource). */
export function loadMerged(file: string, adapter: LoraAdapter, backend: Backend): CausalLM {
  const { format, config, source } = openModelFiles(file);
  try {
    const w = new WeightLoader(mergedSource(source, format, config.model_type, adapter, { f32: true }), format, backend, undefined, config.model_type);
    return ARCHITECTURES[config.model_type].load(config, w, backend);
  } finally {
    source.close();
  }
}
