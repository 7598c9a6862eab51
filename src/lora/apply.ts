// LoRA applied without merging: y = x W^T + scale (x A^T) B^T, through Backend ops (two F32
// matmuls and an add per run of rows), on any base weight type. Several adapters live on one model
// (a LoraSet); each batch row names its adapter (BatchEntry.adapter, 0 = the base model), and each
// adapter's delta is added to its own rows only (as S-LoRA / Punica batch them).
import type { Backend, Weight } from '../backend/backend.js';
import { fail, quote } from '../errors.js';
import type { QwenConfig } from '../models/config.js';
import type { LoraAdapter } from './adapter.js';
import { checkAdapter } from './targets.js';

interface HeldModule {
  r: number;
  n: number;
  /** [r, K] */
  a: Weight;
  /** [N, r], times the module's scale */
  b: Weight;
}

/** One loaded adapter: its modules by `layer:target`. */
interface Slot {
  name: string;
  adapter: LoraAdapter;
  modules: Map<string, HeldModule>;
}

/** The adapters loaded on one model; adapter ids are 1, 2, ... in load order (0: none). */
export class LoraSet {
  private readonly slots: Slot[] = [];
  /** the adapter of rows that name none (run / logits / bench --lora: every sequence uses it); 0: the base model */
  fallback = 0;
  constructor(
    readonly backend: Backend,
    readonly config: QwenConfig,
  ) {}

  /** Check `adapter` against the model and copy it into backend storage; returns its id. */
  add(adapter: LoraAdapter, scale = 1): number {
    checkAdapter(this.config, adapter);
    if (this.slots.some((s) => s.name === adapter.name)) fail(`a LoRA adapter named ${quote(adapter.name)} is already loaded`);
    const be = this.backend;
    const modules = new Map<string, HeldModule>();
    for (const m of adapter.modules) {
      be.place?.(m.layer); // next to the layer's own weights (backends of several memories)
      const a = be.weight('F32', [m.r, m.inFeatures]);
      new Float32Array(a.bytes.buffer, a.bytes.byteOffset, m.a.length).set(m.a);
      const s = m.scale * scale;
      // B's rows, scaled, as held: one weight per output the model computes (Qwen3.5's q_proj: query and gate)
      const held = (key: string, rows: number[]) => {
        const b = be.weight('F32', [rows.length, m.r]);
        const bf = new Float32Array(b.bytes.buffer, b.bytes.byteOffset, rows.length * m.r);
        rows.forEach((row, i) => {
          for (let j = 0; j < m.r; j++) bf[i * m.r + j] = m.b[row * m.r + j]! * s;
        });
        modules.set(`${m.layer}:${key}`, { r: m.r, n: rows.length, a, b });
      };
      const all = Array.from({ length: m.outFeatures }, (_, i) => i);
      if (this.config.model_type === 'qwen3_5_text' && m.target === 'q_proj') {
        const Dh = this.config.head_dim; // rows per head: Dh query rows, then Dh gate rows (as the loader's splitRows)
        held(
          'q_proj',
          all.filter((i) => i % (2 * Dh) < Dh),
        );
        held(
          'q_proj.gate',
          all.filter((i) => i % (2 * Dh) >= Dh),
        );
      } else held(m.target, all);
    }
    this.slots.push({ name: adapter.name, adapter, modules });
    return this.slots.length;
  }

  /** The id of the adapter loaded as `name`, or undefined. */
  id(name: string): number | undefined {
    const i = this.slots.findIndex((s) => s.name === name);
    return i < 0 ? undefined : i + 1;
  }

  get names(): string[] {
    return this.slots.map((s) => s.name);
  }

  adapter(id: number): LoraAdapter | undefined {
    return this.slots[id - 1]?.adapter;
  }

  /** The batch's runs of consecutive rows with one adapter; undefined when no row has one. */
  pass(batch: readonly { adapter?: number }[]): LoraPass | undefined {
    let runs: Run[] | undefined;
    for (let t = 0; t < batch.length; t++) {
      const id = batch[t]!.adapter ?? this.fallback;
      if (id === 0) continue;
      const slot = this.slots[id - 1];
      if (!slot || !Number.isInteger(id)) fail(`batch row ${t} asks for LoRA adapter ${id}, but ${this.slots.length} are loaded`);
      runs ??= [];
      const last = runs[runs.length - 1];
      if (last && last.slot === slot && last.t1 === t) last.t1++;
      else runs.push({ slot, t0: t, t1: t + 1 });
    }
    return runs && new LoraPass(runs);
  }
}

interface Run {
  slot: Slot;
  t0: number;
  t1: number;
}

/** A forward pass's adapters: which rows get which deltas. */
export class LoraPass {
  constructor(private readonly runs: readonly Run[]) {}

  /** out [T, N] += scale (x A^T) B^T for each run of rows whose adapter has `layer:target`; x [T, K]. */
  add(be: Backend, out: Float32Array, x: Float32Array, K: number, layer: number, target: string): void {
    const key = `${layer}:${target}`;
    for (const { slot, t0, t1 } of this.runs) {
      const m = slot.modules.get(key);
      if (!m) continue;
      const n = t1 - t0;
      const xa = be.alloc(n * m.r); // [n, r]
      be.matmul(xa, x.subarray(t0 * K, t1 * K), m.a, n);
      const d = be.alloc(n * m.n); // [n, N]
      be.matmul(d, xa, m.b, n);
      const y = out.subarray(t0 * m.n, t1 * m.n);
      be.add(y, y, d, n * m.n);
      be.free?.(xa);
      be.free?.(d);
    }
  }
}

/** A layer's view of a pass: what the projections of layer `layer` add. */
export interface LayerLora {
  pass: LoraPass;
  layer: number;
}

/**
 * The projections of one input: outs[i] = x ws[i]^T, plus each row's adapter delta for module
 * targets[i] (`q_proj`, ...). x [T, K]. Every adaptable projection of the model code goes through here.
 */
export function linear(be: Backend, outs: Float32Array[], x: Float32Array, ws: Weight[], T: number, lora: LayerLora | undefined, targets: readonly string[]): void {
  if (outs.length === 1) be.matmul(outs[0]!, x, ws[0]!, T);
  else be.matmulMany(outs, x, ws, T);
  if (!lora) return;
  const K = ws[0]!.shape[1]!;
  outs.forEach((o, i) => lora.pass.add(be, o, x, K, lora.layer, targets[i]!));
}
