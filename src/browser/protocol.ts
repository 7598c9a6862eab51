// The messages between a page (client.ts, BrowserEngine) and the engine's Web Worker (worker.ts).
// Plain data (structured clone): a File / Blob source travels as itself, errors as name + message.
// Not src/engine/protocol.ts: that one carries the scheduler's token steps to a Node HTTP thread
// that holds its own tokenizer; here the worker holds the tokenizer too and sends decoded text.
import type { GenerateOptions } from '../generate/sequence.js';

/** Where a model's files come from (see ModelSource in index.ts): a URL ending in '/' and a hub
 * file '' are Hugging Face folders (config.json, tokenizer files, safetensors). */
export type WireSource = { kind: 'url'; url: string } | { kind: 'blob'; blob: Blob; name: string } | { kind: 'hub'; id: string; file: string; revision: string };

export interface WireLoadOptions {
  /** hub ids resolve to `${hubBaseUrl}/<id>/resolve/<revision>/<file>` (default https://huggingface.co) */
  hubBaseUrl?: string;
  /** where hub files are cached: 'cache' (the Cache API, default), 'opfs' (the origin private file system) or 'none' */
  cache?: 'cache' | 'opfs' | 'none';
  /** threads for the kernels (default: navigator.hardwareConcurrency when the page is cross-origin isolated, else 1) */
  threads?: number;
  /** 'wasm' (relaxed SIMD where the browser has it, default) or 'wasm-simd' */
  backend?: 'wasm' | 'wasm-simd';
  /** each sequence's context, in tokens (default: the model's, capped at 4096 to bound the KV cache) */
  ctxSize?: number;
  /** the folder holding kernels-simd.wasm and kernels-relaxed.wasm (default: dist/src/kernels next to this build) */
  kernelsUrl?: string;
  /** bytes the model's WebAssembly memory may take (default and most 4 GiB: wasm32) */
  memoryLimit?: number;
}

export interface LoadProgress {
  /** the file being read (URL, file name, or hub path) */
  file: string;
  /** 'download': bytes fetched into the cache; 'load': bytes read into the engine's memory */
  phase: 'download' | 'load';
  done: number;
  total: number;
}

/** How the kernels run: `notice` says why there is only one thread (the page can show it). */
export interface ThreadInfo {
  threads: number;
  crossOriginIsolated: boolean;
  notice?: string;
}

export interface ModelInfo {
  /** the model's config.json fields as qwen.ts reads them (model_type, vocab_size, ...) */
  config: { model_type: string; vocab_size: number; max_position_embeddings: number; num_hidden_layers: number; hidden_size: number };
  /** bytes of weights read */
  weightBytes: number;
  threads: ThreadInfo;
  /** the backend's name (kernel variant and threads), as `qwen-ts bench` prints it */
  backend: string;
  /** the model ships no chat template (plain ChatML is used) */
  templateFallback: boolean;
}

/** Sampling as the CLI takes it (temperature 0: greedy). */
export type WireGenerateOptions = Omit<GenerateOptions, 'signal' | 'constraint' | 'onCached' | 'stop_tokens' | 'adapter'>;

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
}

export type GenerateInput = { messages: ChatMessage[]; enableThinking?: boolean } | { prompt: string } | { ids: number[] };

export type ToWorker =
  | { type: 'load'; id: number; source: WireSource; opts: WireLoadOptions }
  | { type: 'generate'; id: number; input: GenerateInput; opts: WireGenerateOptions }
  | { type: 'abort'; id: number }
  | { type: 'tokenize'; id: number; text: string }
  | { type: 'detokenize'; id: number; ids: number[] }
  | { type: 'template'; id: number; messages: ChatMessage[]; enableThinking?: boolean }
  | { type: 'unload'; id: number };

export interface GenerateStats {
  finish: 'stop' | 'length' | 'abort' | 'error';
  promptTokens: number;
  completionTokens: number;
  /** seconds of the prompt's forward passes (to the first token) and of the rest */
  prefillSeconds: number;
  decodeSeconds: number;
  /** text the decoder still held at the end (the bytes of an unfinished UTF-8 character, as U+FFFD): append it */
  tail: string;
}

export type FromWorker =
  | { type: 'progress'; id: number; progress: LoadProgress }
  | { type: 'threads'; id: number; threads: ThreadInfo }
  | { type: 'token'; id: number; token: number; text: string }
  | { type: 'done'; id: number; value: unknown }
  | { type: 'error'; id: number; error: { name: string; message: string } };
