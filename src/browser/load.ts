// A model and its tokenizer from a browser source (URL, Blob, hub file), on the WebAssembly
// backend: what the engine worker runs on `load`. Kept apart from worker.ts so that Node tests
// can run it (with a fetch and a FileStore of their own).
import { WasmBackend } from '../backend/wasm.js';
import type { Backend } from '../backend/backend.js';
import type { TensorInfo } from '../formats/file.js';
import type { QwenConfig } from '../models/config.js';
import type { CausalLM } from '../models/model.js';
import { tokenizerFromGgufMetadata } from '../tokenizer/gguf_vocab.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { fail, quote } from '../errors.js';
import { cachedFile, hubUrl, HF_BASE, type FileStore } from './cache.js';
import type { LoadProgress, WireLoadOptions, WireSource } from './protocol.js';
import { openBlob, openUrl, readGgufHeader, type FetchFn, type RangeSource } from './remote.js';
import { ggufModel, loadStreamedModel, type StreamedModel } from './streamed.js';
import { checkVocab } from '../models/load_source.js';
import { openHfFolder } from './hf_folder.js';
import { poolReady } from './platform.js';

/** One wasm32 memory: what the engine can address (4 GiB). */
export const MEMORY_LIMIT = 4 * 2 ** 30;
/** Activations, scratch, logits and the kernels' own memory, beyond weights and KV cache. */
const HEADROOM = 384 * 2 ** 20;
/** The context a browser load takes when none is asked for (the KV cache is allocated as it fills, but is budgeted for this). */
export const DEFAULT_BROWSER_CTX = 4096;

export interface LoadedModel {
  model: CausalLM;
  backend: Backend;
  tokenizer: Tokenizer;
  config: QwenConfig;
  weightBytes: number;
}

const GiB = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

/** The bytes a model needs in WebAssembly memory: its weights, an f32 KV cache of `ctx` tokens, headroom. */
export function memoryNeeded(tensors: Iterable<TensorInfo>, config: QwenConfig, ctx: number): { weights: number; kv: number; total: number } {
  let weights = 0;
  for (const t of tensors) weights += t.byteLength;
  const attnLayers = config.layer_types ? config.layer_types.filter((t) => t === 'full_attention').length : config.num_hidden_layers;
  const kv = ctx * attnLayers * 2 * config.num_key_value_heads * config.head_dim * 4;
  return { weights, kv, total: weights + kv + HEADROOM };
}

/** A model too large for the engine's memory: an error before its weights are read. */
export function checkFits(path: string, tensors: Iterable<TensorInfo>, config: QwenConfig, ctx: number, limit = MEMORY_LIMIT): void {
  const m = memoryNeeded(tensors, config, ctx);
  if (m.total > limit) {
    fail(
      `${path}: this model needs about ${GiB(m.total)} of WebAssembly memory (weights ${GiB(m.weights)}, KV cache for ${ctx} tokens ${GiB(m.kv)}), more than the ${GiB(limit)} the browser engine can use (one wasm32 memory); choose a smaller model or quantisation, or a smaller ctxSize`,
    );
  }
}

/** A page's load options, checked before anything is fetched: a bad one is an error naming it. */
export function checkLoadOptions(opts: WireLoadOptions): void {
  for (const name of ['threads', 'ctxSize', 'memoryLimit'] as const) {
    const v = opts[name];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) fail(`load option ${name} must be a positive integer, got ${v}`);
  }
  if (opts.backend !== undefined && opts.backend !== 'wasm' && opts.backend !== 'wasm-simd') fail(`load option backend must be 'wasm' or 'wasm-simd', got ${quote(String(opts.backend))}`);
  if (opts.cache !== undefined && !['cache', 'opfs', 'none'].includes(opts.cache)) fail(`load option cache must be 'cache', 'opfs' or 'none', got ${quote(String(opts.cache))}`);
}

export interface BrowserLoadDeps {
  fetchFn?: FetchFn;
  /** where hub files are kept (absent: they are read from the network each time) */
  store?: FileStore;
  threads: number;
  onProgress?: (p: LoadProgress) => void;
  onNote?: (note: string) => void;
  signal?: AbortSignal;
}

/** Open the source, read its header, refuse a model too large, stream the weights in, build the tokenizer. */
export async function loadBrowserModel(source: WireSource, opts: WireLoadOptions, deps: BrowserLoadDeps): Promise<LoadedModel> {
  checkLoadOptions(opts);
  const fetchFn = deps.fetchFn ?? ((u, i) => fetch(u, i));
  const limit = Math.min(MEMORY_LIMIT, opts.memoryLimit ?? MEMORY_LIMIT);
  const progress = (file: string, phase: LoadProgress['phase']) => (done: number, total: number) => deps.onProgress?.({ file, phase, done, total });
  const ctxFor = (c: QwenConfig) => opts.ctxSize ?? Math.min(c.max_position_embeddings, DEFAULT_BROWSER_CTX);
  const fits = (m: StreamedModel) => checkFits(m.path, m.tensors.values(), m.config, ctxFor(m.config), limit);
  const open = (url: string) => openUrl(url, fetchFn, deps.signal);
  /** a GGUF file's header, refused when the model would not fit */
  const readGguf = async (src: RangeSource) => {
    const g = await readGgufHeader(src, deps.signal);
    const count = g.metadata.get('split.count');
    if (typeof count === 'number' && count > 1)
      fail(`${src.name}: one shard of a split GGUF (${count} files); the browser engine reads a model from one file: merge the set first (llama-gguf-split --merge)`);
    const m = ggufModel(g, src);
    fits(m);
    return { g, m };
  };
  const makeBackend = () => {
    try {
      return new WasmBackend({ threads: deps.threads, relaxed: opts.backend !== 'wasm-simd', memoryLimit: limit });
    } catch (e) {
      fail(
        `the WebAssembly backend cannot start here (${(e as Error).message}); the kernels need shared WebAssembly memory, which some browsers give only to cross-origin isolated pages (COOP: same-origin, COEP: require-corp)`,
      );
    }
  };
  // a Hugging Face folder: a URL ending in '/', or a hub id with no file
  const folder =
    source.kind === 'url' && source.url.endsWith('/')
      ? source.url
      : source.kind === 'hub' && !source.file
        ? hubUrl(source.id, 'config.json', source.revision, opts.hubBaseUrl ?? HF_BASE).slice(0, -'config.json'.length)
        : undefined;
  let m: StreamedModel, tokenizer: Tokenizer;
  if (folder) {
    ({ model: m, tokenizer } = await openHfFolder(folder, open, fetchFn, deps.signal));
    fits(m);
  } else {
    let src: RangeSource;
    if (source.kind === 'blob') src = openBlob(source.blob, source.name);
    else if (source.kind === 'url') src = await open(source.url);
    else {
      const url = hubUrl(source.id, source.file, source.revision, opts.hubBaseUrl ?? HF_BASE);
      src = deps.store ? await cachedFile(url, deps.store, open, async (remote) => void (await readGguf(remote)), progress(url, 'download'), fetchFn, deps.signal) : await open(url);
    }
    const header = await readGguf(src); // (again for a cached copy: the header is small, and the copy is what loads)
    m = header.m;
    tokenizer = tokenizerFromGgufMetadata(header.g.metadata, src.name);
  }
  checkVocab(m.path, tokenizer, m.config);
  const { model, backend } = await loadStreamedModel(m, makeBackend, { ctxSize: ctxFor(m.config), onProgress: progress(m.path, 'load'), onNote: deps.onNote, signal: deps.signal });
  await poolReady(); // the pool's Web Workers start while this worker's event loop runs
  return { model, backend, tokenizer, config: model.config, weightBytes: memoryNeeded(m.tensors.values(), m.config, 0).weights };
}
