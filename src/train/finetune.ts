// finetune(): LoRA fine-tuning from a JSONL file to a PEFT adapter folder, the library face of
// `qwen-ts finetune`. Loads the base model for training (grad.ts), tokenizes the data with the
// model's tokenizer and chat template (data.ts), initialises the adapter as PEFT does (init.ts)
// and runs the loop (loop.ts), which writes the adapter and its resume state into `out`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { fail, quote } from '../errors.js';
import { resolveModel } from '../hub/resolve.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { hubRepoOf } from '../lora/load.js';
import type { LoadQuantType } from '../models/weights.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { readTrainerState, TRAINER_STATE } from './checkpoint.js';
import { readTrainData } from './data.js';
import { loadTrainModel, lossAndGrad, lossOnly, type TrainModel } from './grad.js';
import { initAdapter } from './init.js';
import { type TrainEvent, type TrainResult, trainLoop } from './loop.js';

export type { TrainEvent } from './loop.js';
export type { EpochRecord } from './checkpoint.js';

export interface FinetuneOptions {
  /** base model: HF folder, GGUF file or hub id (dense Qwen2 / Qwen2.5 / Qwen3) */
  model: string;
  /** training data, JSONL: {"messages": [...]} or {"prompt": ..., "completion": ...} lines */
  data: string;
  /** the adapter folder written (adapter_config.json, adapter_model.safetensors, resume state) */
  out: string;
  /** validation data (same format): its loss is reported after each epoch */
  val?: string;
  /** LoRA rank (default 8) */
  rank?: number;
  /** lora_alpha (default 2 x rank) */
  alpha?: number;
  /** rank-stabilised scaling alpha / sqrt(r) (PEFT's use_rslora) */
  rslora?: boolean;
  /** module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj); default all */
  targets?: string[];
  /** peak learning rate (default 2e-4) */
  lr?: number;
  epochs?: number;
  /** tokens per batch (sequences are grouped up to it; default 2048) */
  batchTokens?: number;
  /** batches per optimizer step (default 1) */
  gradAccum?: number;
  seed?: number;
  /** linear warmup steps (default 0); the rate then falls linearly to 0 */
  warmup?: number;
  weightDecay?: number;
  /** gradient norm clip (default 1, transformers' max_grad_norm; 0 = off) */
  maxGradNorm?: number;
  /** longest training sequence in tokens (default: the model's context, at most 4096) */
  maxSeqLen?: number;
  /** cut longer sequences with a warning (default) or refuse them */
  truncate?: boolean;
  /** checkpoint every this many steps as well as at each epoch's end */
  saveSteps?: number;
  /** continue the run saved in `out` */
  resume?: boolean;
  threads?: number;
  /** a backend to train on instead of WebAssembly (e.g. the reference backend) */
  backend?: Backend;
  quantize?: LoadQuantType;
  /** warnings and notes (default: stderr) */
  onWarning?: (message: string) => void;
}

export interface FinetuneResult extends TrainResult {
  out: string;
  adapter: LoraAdapter;
  examples: number;
}

export type FinetuneEvent = TrainEvent | { type: 'start'; examples: number; valExamples: number; tokens: number };

function positiveInt(v: number | undefined, what: string, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n < 1) fail(`${what} must be a positive integer, got ${quote(v)}`);
  return n;
}

/** Train a LoRA adapter on `o.data` and write it to `o.out`; onProgress sees each step and epoch. */
export async function finetune(o: FinetuneOptions, onProgress?: (e: FinetuneEvent) => void): Promise<FinetuneResult> {
  const warn = o.onWarning ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const rank = positiveInt(o.rank, 'the LoRA rank', 8);
  const alpha = o.alpha ?? 2 * rank;
  const batchTokens = positiveInt(o.batchTokens, 'batch tokens', 2048);
  if (o.out === '' || (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory())) fail(`${o.out}: the output must be a folder`);
  // a finished or stopped run is never overwritten by accident (checked again by the loop)
  const saved = readTrainerState(o.out);
  if (saved && !o.resume) fail(`${o.out} already holds a fine-tuning run (${TRAINER_STATE}); pass --resume to continue it, or choose another output folder`);
  if (!saved && o.resume) fail(`${o.out}: nothing to resume (no ${TRAINER_STATE}); run without --resume to start`);
  const source = await resolveModel(o.model);
  if (!fs.existsSync(source)) fail(`${o.model}: no such model folder or file, and not a hub id (owner/name)`);
  const tok = loadTokenizer(source);
  const model: TrainModel = await loadTrainModel(source, { threads: o.threads, backend: o.backend, quantize: o.quantize, onNote: warn });
  try {
    const c = model.config;
    const maxTokens = positiveInt(o.maxSeqLen, 'the longest sequence', Math.min(c.max_position_embeddings, 4096));
    if (maxTokens > c.max_position_embeddings) fail(`the longest sequence (${maxTokens}) is more than the model's context of ${c.max_position_embeddings}`);
    const dataOpts = { maxTokens, truncate: o.truncate, warn };
    const train = readTrainData(o.data, tok, dataOpts);
    const val = o.val ? readTrainData(o.val, tok, dataOpts) : undefined;
    for (const s of [...train, ...(val ?? [])]) {
      const bad = s.tokens.find((t) => t >= c.vocab_size);
      if (bad !== undefined) fail(`line ${s.line}: token id ${bad} is outside the model's vocabulary of ${c.vocab_size}`);
    }
    // PEFT records what the adapter was trained on: the hub id where there is one
    const baseModel = fs.existsSync(o.model) ? (hubRepoOf(source) ?? path.resolve(o.model)) : o.model.replace(/^(hf|ms|modelscope):/, '').replace(/@.*$/, '');
    const adapter = initAdapter(c, { rank, alpha, rslora: o.rslora, targets: o.targets, seed: o.seed ?? 0, name: path.basename(path.resolve(o.out)), baseModel });
    onProgress?.({ type: 'start', examples: train.length, valExamples: val?.length ?? 0, tokens: train.reduce((n, s) => n + s.tokens.length, 0) });
    const r = trainLoop(
      { lossAndGrad, lossOnly },
      model,
      adapter,
      train,
      val,
      {
        out: o.out,
        lr: o.lr ?? 2e-4,
        epochs: positiveInt(o.epochs, 'epochs', 3),
        batchTokens,
        gradAccum: positiveInt(o.gradAccum, 'gradient accumulation', 1),
        seed: o.seed ?? 0,
        warmup: o.warmup,
        weightDecay: o.weightDecay,
        maxGradNorm: o.maxGradNorm,
        saveSteps: o.saveSteps,
        resume: o.resume,
        runOptions: { rank, alpha, rslora: o.rslora ?? false, targets: adapter.config.target_modules, max_seq_len: maxTokens },
      },
      onProgress,
    );
    return { ...r, out: o.out, adapter, examples: train.length };
  } finally {
    model.dispose();
  }
}
