// The messages between the HTTP thread (client.ts) and the engine thread (worker.ts). Everything
// here is plain data (structured clone): a constraint travels as its spec, errors as name + message.
import type { ConstraintSpec } from '../generate/constrain/index.js';
import type { FinishReason, GenerateOptions, Step } from '../generate/sequence.js';
import type { QwenConfig } from '../models/config.js';
import type { LoadQuantType } from '../models/weights.js';
import type { KvType } from '../backend/backend.js';
import type { SchedulerStats } from '../generate/scheduler.js';
import type { SpecOptions } from '../generate/spec_open.js';
import type { LoraSpec } from '../lora/load.js';
import type { EmbedInput, EmbedOptions, EmbedResult } from '../embed/embed.js';
import type { RerankOptions, RerankResult } from '../embed/rerank.js';
import type { ImageEmbedding } from '../vision/types.js';

/** What the engine thread is started with (workerData). */
export interface EngineInit {
  path: string;
  /** --backend / --threads as the CLI got them (the engine thread builds its own backend) */
  backend?: string;
  threads?: string;
  quantize?: LoadQuantType;
  checkTensors?: boolean;
  /** --ctx-size: each sequence's context capped at this many tokens */
  ctxSize?: number;
  /** --cache-type: how KV caches store keys and values */
  cacheType?: KvType;
  /** requests generating at once */
  parallel?: number;
  /** tokens per forward pass */
  tokenBudget?: number;
  /** bytes for the prefix cache (0 or absent: off) */
  cacheMem?: number;
  /** speculative decoding (the draft model is loaded on the engine thread, on its backend) */
  spec?: SpecOptions;
  /** LoRA adapters loaded with the model (ids 1, 2, ... in order; requests pick one by id) */
  lora?: LoraSpec[];
  /** the vision tower (LoadOptions.mmproj: a file, false for none, absent: found beside the model) */
  mmproj?: string | false;
}

/** GenerateOptions as data: no signal (cancel is a message), the constraint as its spec. */
export type WireOptions = Omit<GenerateOptions, 'signal' | 'constraint' | 'onCached'> & { constraint?: ConstraintSpec };

export interface WireError {
  name: string;
  message: string;
}

/** Work that is not a generation, run on the engine thread beside the scheduler's passes. */
export type EngineTask =
  | { kind: 'embed'; inputs: EmbedInput[]; opts: Omit<EmbedOptions, 'signal'> }
  | { kind: 'rerank'; query: string; documents: string[]; opts: Omit<RerankOptions, 'signal'> }
  /** an image's bytes, decoded and encoded by the model's vision tower (its rows come back transferred) */
  | { kind: 'image'; bytes: Uint8Array; hash: string };

export interface TaskResult {
  embed: EmbedResult;
  rerank: RerankResult;
  image: ImageEmbedding;
}

export type ToEngine = { type: 'submit'; id: number; prompt: number[]; opts: WireOptions } | { type: 'task'; id: number; task: EngineTask } | { type: 'cancel'; id: number };

export type FromEngine =
  | { type: 'progress'; done: number; total: number }
  | { type: 'note'; note: string }
  | { type: 'ready'; config: QwenConfig; vision?: { kind: string } }
  | { type: 'failed'; error: WireError }
  | { type: 'cached'; id: number; tokens: number }
  | { type: 'step'; id: number; step: Step }
  | { type: 'end'; id: number; finish: FinishReason; error?: WireError; stats: SchedulerStats }
  | { type: 'taskDone'; id: number; value?: TaskResult[EngineTask['kind']]; error?: WireError };

export function toWire(e: unknown): WireError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}
