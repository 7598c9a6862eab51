// A fine-tuning run's state next to its adapter, so --resume continues it exactly:
//   adapter_config.json + adapter_model.safetensors   the adapter after the last optimizer step (PEFT, F32)
//   optimizer.safetensors                             AdamW's moments (F32, torch's exp_avg / exp_avg_sq names)
//   trainer_state.json                                step, position in the epoch, options, data fingerprint, history
// Files are written adapter first and trainer_state.json last (each atomically), so the state never
// points past the adapter on disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail, quote } from '../errors.js';
import { openSafetensors } from '../formats/safetensors.js';
import { writeSafetensors, type StTensorOut } from '../formats/safetensors_writer.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { readPeftAdapter, writePeftAdapter } from '../lora/peft.js';
import type { AdamW } from './adamw.js';

export const TRAINER_STATE = 'trainer_state.json';
export const OPTIMIZER_STATE = 'optimizer.safetensors';
const FORMAT = 'qwen-ts-finetune/1';

export interface EpochRecord {
  epoch: number;
  step: number;
  train_loss: number;
  val_loss?: number;
  tokens_per_second: number;
}

export interface TrainerState {
  format: string;
  /** optimizer steps taken */
  global_step: number;
  total_steps: number;
  /** epoch in progress (0-based) and the next accumulation group in it */
  epoch: number;
  group: number;
  /** summed loss and target count of the epoch so far (the epoch's train loss continues from them) */
  epoch_loss: number;
  epoch_count: number;
  /** the options that shape the run: a resume must use the same */
  options: Record<string, unknown>;
  /** sha256 of the tokenized training data (tokens and masks) */
  data: string;
  history: EpochRecord[];
  status: 'running' | 'done' | 'stopped';
}

const bytesOf = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

/** Write the adapter, the optimizer's moments and the trainer state into dir (created if needed). */
export function saveCheckpoint(dir: string, adapter: LoraAdapter, opt: AdamW, state: TrainerState): void {
  fs.mkdirSync(dir, { recursive: true });
  writePeftAdapter(dir, adapter);
  const tensors: StTensorOut[] = [];
  for (const m of adapter.modules) {
    for (const [part, n] of [
      ['lora_A', m.a.length],
      ['lora_B', m.b.length],
    ] as const) {
      const s = opt.moments(`${m.name}.${part}`, n);
      const shape = part === 'lora_A' ? [m.r, m.inFeatures] : [m.outFeatures, m.r];
      tensors.push({ name: `${m.name}.${part}.exp_avg`, dtype: 'F32', shape, data: bytesOf(s.m) });
      tensors.push({ name: `${m.name}.${part}.exp_avg_sq`, dtype: 'F32', shape, data: bytesOf(s.v) });
    }
  }
  writeSafetensors(path.join(dir, OPTIMIZER_STATE), tensors, { format: 'pt', step: String(opt.step) });
  const file = path.join(dir, TRAINER_STATE);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify({ ...state, format: FORMAT }, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

/** The trainer state in dir, or undefined when there is none. */
export function readTrainerState(dir: string): TrainerState | undefined {
  const file = path.join(dir, TRAINER_STATE);
  if (!fs.existsSync(file)) return undefined;
  let s: TrainerState;
  try {
    s = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (s?.format !== FORMAT || !Number.isInteger(s.global_step) || !Number.isInteger(s.epoch) || !Number.isInteger(s.group) || !Array.isArray(s.history)) {
    fail(`${file}: not a qwen-ts fine-tuning state (${FORMAT})`);
  }
  return s;
}

/**
 * Restore a run from dir into `adapter` (values copied by module name, so the caller's module order
 * stays) and `opt`; the state's options must equal `options`, naming the first that differs.
 */
export function loadCheckpoint(dir: string, adapter: LoraAdapter, opt: AdamW, options: Record<string, unknown>, data: string): TrainerState {
  const state = readTrainerState(dir);
  if (!state) fail(`${dir}: nothing to resume (no ${TRAINER_STATE}); run without --resume to start`);
  for (const [k, v] of Object.entries(options)) {
    if (JSON.stringify(state.options[k]) !== JSON.stringify(v)) fail(`${dir}: cannot resume: ${k} was ${quote(state.options[k])} in this run, now ${quote(v)}`);
  }
  if (state.data !== data) fail(`${dir}: cannot resume: the training data (or the tokenizer) differs from the run's`);
  const saved = readPeftAdapter(dir);
  const byName = new Map(saved.modules.map((m) => [m.name, m]));
  const src = openSafetensors(path.join(dir, OPTIMIZER_STATE));
  try {
    const read = (name: string, into: Float32Array) => {
      const info = src.tensors.get(name);
      if (info?.dtype !== 'F32' || info.byteLength !== into.byteLength) fail(`${dir}/${OPTIMIZER_STATE}: tensor ${quote(name)} is missing or has the wrong shape`);
      src.readInto(name, bytesOf(into));
    };
    for (const m of adapter.modules) {
      const s = byName.get(m.name);
      if (!s || s.a.length !== m.a.length || s.b.length !== m.b.length) fail(`${dir}: the saved adapter has no module ${quote(m.name)} of this shape`);
      m.a.set(s.a);
      m.b.set(s.b);
      for (const [part, n] of [
        ['lora_A', m.a.length],
        ['lora_B', m.b.length],
      ] as const) {
        const mo = opt.moments(`${m.name}.${part}`, n);
        read(`${m.name}.${part}.exp_avg`, mo.m);
        read(`${m.name}.${part}.exp_avg_sq`, mo.v);
      }
    }
    opt.step = Number(src.metadata.step ?? state.global_step);
  } finally {
    src.close();
  }
  return state;
}
