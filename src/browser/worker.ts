// The engine's Web Worker (started by BrowserEngine in index.ts): loads a model, then generates on
// request, one token message at a time; the page never runs a forward pass, so it never freezes.
// Between tokens the worker returns to its event loop, so an abort message stops a generation at
// the next token.
import { generate } from '../generate/generate.js';
import { applyChatTemplate, chatTemplateFor } from '../tokenizer/chat_template.js';
import { StreamDecoder } from '../tokenizer/tokenizer.js';
import { cacheApiStore, opfsStore, type FileStore } from './cache.js';
import { checkLoadOptions, loadBrowserModel, type LoadedModel } from './load.js';
import { singleThreadReason, useBrowserPlatform } from './platform.js';
import type { FromWorker, GenerateInput, GenerateStats, ModelInfo, ThreadInfo, ToWorker, WireGenerateOptions, WireLoadOptions, WireSource } from './protocol.js';

const post = (m: FromWorker) => (self as unknown as { postMessage(m: FromWorker): void }).postMessage(m);
let loaded: LoadedModel | undefined;
let platformReady: Promise<unknown> | undefined;
const running = new Map<number, AbortController>();

function store(kind: WireLoadOptions['cache']): FileStore | undefined {
  if (kind === 'none') return undefined;
  if (kind === 'opfs') return opfsStore();
  return typeof caches === 'undefined' ? undefined : cacheApiStore();
}

async function load(id: number, source: WireSource, opts: WireLoadOptions): Promise<ModelInfo> {
  checkLoadOptions(opts); // (before the thread count is taken from it)
  platformReady ??= useBrowserPlatform({ kernelsUrl: opts.kernelsUrl ?? new URL('../kernels/', import.meta.url) });
  await platformReady;
  const notice = singleThreadReason();
  const threads: ThreadInfo = {
    threads: notice ? 1 : Math.max(1, Math.min(opts.threads ?? navigator.hardwareConcurrency ?? 1, 256)),
    crossOriginIsolated: Boolean((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated),
    ...(notice ? { notice } : {}),
  };
  post({ type: 'threads', id, threads });
  loaded?.backend.dispose?.();
  loaded = undefined;
  loaded = await loadBrowserModel(source, opts, {
    threads: threads.threads,
    store: store(opts.cache),
    onProgress: (progress) => post({ type: 'progress', id, progress }),
    onNote: (note) => console.warn(`qwen.ts: ${note}`),
  });
  const c = loaded.config;
  return {
    config: { model_type: c.model_type, vocab_size: c.vocab_size, max_position_embeddings: c.max_position_embeddings, num_hidden_layers: c.num_hidden_layers, hidden_size: c.hidden_size },
    weightBytes: loaded.weightBytes,
    threads,
    backend: loaded.backend.name,
    templateFallback: chatTemplateFor(loaded.tokenizer).fallback,
  };
}

function model(): LoadedModel {
  if (!loaded) throw new Error('no model is loaded (call load() first)');
  return loaded;
}

/** The prompt's token ids: chat messages through the model's template (as `qwen-ts run` renders them), text, or ids. */
function promptIds(m: LoadedModel, input: GenerateInput): number[] {
  if ('ids' in input) return input.ids;
  if ('prompt' in input) return m.tokenizer.encode(input.prompt);
  return m.tokenizer.encode(applyChatTemplate(m.tokenizer, { messages: input.messages, addGenerationPrompt: true, enableThinking: input.enableThinking ?? true }));
}

async function run(id: number, input: GenerateInput, opts: WireGenerateOptions): Promise<GenerateStats> {
  const m = model();
  const ids = promptIds(m, input);
  const ac = new AbortController();
  running.set(id, ac);
  const dec = new StreamDecoder(m.tokenizer);
  const t0 = performance.now();
  let first = 0,
    n = 0;
  try {
    const it = generate(m.model, ids, { ...opts, stop_tokens: m.tokenizer.eosTokenIds, vocab_limit: m.tokenizer.vocabSize, signal: ac.signal });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        const end = performance.now();
        return { finish: r.value, promptTokens: ids.length, completionTokens: n, prefillSeconds: ((first || end) - t0) / 1000, decodeSeconds: first ? (end - first) / 1000 : 0, tail: dec.flush() };
      }
      if (n++ === 0) first = performance.now();
      post({ type: 'token', id, token: r.value.token, text: dec.push(r.value.token) });
    }
  } finally {
    running.delete(id);
  }
}

async function handle(m: ToWorker): Promise<unknown> {
  switch (m.type) {
    case 'load':
      return load(m.id, m.source, m.opts);
    case 'generate':
      return run(m.id, m.input, m.opts);
    case 'tokenize':
      return model().tokenizer.encode(m.text);
    case 'detokenize':
      return model().tokenizer.decode(m.ids);
    case 'template':
      return applyChatTemplate(model().tokenizer, { messages: m.messages, addGenerationPrompt: true, enableThinking: m.enableThinking ?? true });
    case 'unload':
      loaded?.backend.dispose?.();
      loaded = undefined;
      return null;
    case 'abort':
      running.get(m.id)?.abort();
      return undefined;
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  handle(m).then(
    (value) => {
      if (m.type !== 'abort') post({ type: 'done', id: m.id, value });
    },
    (err: unknown) => post({ type: 'error', id: m.id, error: err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) } }),
  );
};
