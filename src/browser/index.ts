// qwen.ts in the browser: `import { BrowserEngine } from 'qwen-ts/browser'` (package.json exports,
// "browser" condition). Nothing on this path imports a Node module (test/browser/import_graph.test.ts).
//
// API (the page side; the engine itself runs in a Web Worker, so the page never freezes):
//
//   const engine = new BrowserEngine();          // starts dist/src/browser/worker.js as a module worker
//   engine.onThreads = (t) => ...;               // {threads, crossOriginIsolated, notice?}: notice says why 1 thread
//   const info = await engine.load(source, {     // source: a URL, a File / Blob, or {hub: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF', file: 'x.gguf'}
//     onProgress: (p) => ...,                    // {file, phase: 'download' | 'load', done, total} (bytes)
//     hubBaseUrl, cache: 'cache' | 'opfs' | 'none', threads, ctxSize, kernelsUrl, memoryLimit,
//   });                                          // -> {config, weightBytes, threads, backend, templateFallback}
//   for await (const piece of engine.generate({ messages: [{ role: 'user', content: 'Hi' }] },
//                                             { max_tokens: 64, temperature: 0 })) piece.text ...
//   engine.abort();                              // stops the running generation (it ends with finish 'abort')
//   await engine.tokenize('text'); await engine.detokenize([1, 2]); await engine.template(messages);
//   engine.dispose();                            // ends the worker
//
// generate() yields {token, text} per token (text: the decoded piece, '' while a UTF-8 character is
// incomplete) and returns GenerateStats (finish, token counts, prefill / decode seconds, and `tail`:
// text the decoder still held at the end, to append). The
// chat template is the model's (GGUF tokenizer.chat_template), as `qwen-ts run` renders it, so a
// greedy answer equals `qwen-ts run <model> "<prompt>" --temperature 0` token for token.
//
// Model sources: a GGUF file by URL (read with Range requests: the header first, then each
// tensor's bytes streamed into the engine's WebAssembly memory), a File or Blob (read by slice()),
// or a hub id (`${hubBaseUrl}/<id>/resolve/<revision>/<file>`, cached in the Cache API or OPFS).
// A model larger than the engine can hold (one wasm32 memory: 4 GiB, less with memoryLimit) is
// refused with an error before its weights are downloaded.
//
// Threads: when the page is cross-origin isolated (COOP: same-origin + COEP: require-corp), the
// kernels run on `threads` nested Web Workers sharing the worker's WebAssembly memory; otherwise
// on one thread, and onThreads gets a notice saying so.
//
// The headers a page needs for threads: `Cross-Origin-Opener-Policy: same-origin` and
// `Cross-Origin-Embedder-Policy: require-corp` (or credentialless); a model server needs
// `Accept-Ranges: bytes` (and CORS if it is another origin).
//
// Serving the build without a bundler: dist/src/** as ES modules, dist/src/kernels/*.wasm next to
// them (or kernelsUrl), and the one npm dependency on this path, @huggingface/jinja (chat
// templates). A page's import map does not reach a module worker (Chromium), so the worker's
// `import ... from '@huggingface/jinja'` must be rewritten by the server to the package's URL
// (node_modules/@huggingface/jinja/dist/index.js), or the worker bundled. Checked in Chromium
// (Debian's, Playwright): 2 threads cross-origin isolated, 1 with the notice otherwise; the greedy
// answer equals `qwen-ts run --temperature 0`; hub files cached in the Cache API and OPFS.
import type { ChatMessage, FromWorker, GenerateInput, GenerateStats, LoadProgress, ModelInfo, ThreadInfo, ToWorker, WireGenerateOptions, WireLoadOptions, WireSource } from './protocol.js';

export type { ChatMessage, GenerateInput, GenerateStats, LoadProgress, ModelInfo, ThreadInfo, WireGenerateOptions as GenerateOptions } from './protocol.js';

/** A model: a GGUF URL (absolute, or relative to the page), a Hugging Face folder URL (ending in '/'), a File / Blob, or a hub file (no file: the hub folder). */
export type ModelSource = string | URL | Blob | { hub: string; file?: string; revision?: string };

export interface LoadOptions extends WireLoadOptions {
  onProgress?: (p: LoadProgress) => void;
}

/** One generated token: its id and decoded text piece. */
export interface TokenPiece {
  token: number;
  text: string;
}

export class BrowserEngineError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

type Request = ToWorker extends infer T ? (T extends ToWorker ? Omit<T, 'id'> : never) : never;
type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; onMessage?: (m: FromWorker) => void };

export function wireSource(source: ModelSource, base = globalThis.location?.href): WireSource {
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { kind: 'blob', blob: source, name: (source as { name?: string }).name ?? 'model.gguf' };
  if (typeof source === 'object' && !(source instanceof URL) && 'hub' in source) return { kind: 'hub', id: source.hub, file: source.file ?? '', revision: source.revision ?? 'main' };
  return { kind: 'url', url: new URL(String(source), base).href };
}

export class BrowserEngine {
  private readonly worker: Worker;
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  private running: number | undefined;
  /** how the kernels run (set by load(); also sent to onThreads) */
  threads: ThreadInfo | undefined;
  onThreads?: (t: ThreadInfo) => void;

  /** `workerUrl`: where dist/src/browser/worker.js is served (default: next to this module). */
  constructor(workerUrl: string | URL = new URL('./worker.js', import.meta.url)) {
    this.worker = new Worker(workerUrl, { type: 'module' });
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    this.worker.onerror = (e) => this.failAll(new BrowserEngineError('Error', `qwen.ts engine worker failed: ${e.message}`));
  }

  private receive(m: FromWorker): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'done') {
      this.pending.delete(m.id);
      p.resolve(m.value);
    } else if (m.type === 'error') {
      this.pending.delete(m.id);
      p.reject(new BrowserEngineError(m.error.name, m.error.message));
    } else p.onMessage?.(m);
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private call<T>(msg: Request, onMessage?: (m: FromWorker) => void, transfer: Transferable[] = []): { id: number; done: Promise<T> } {
    const id = this.next++;
    const done = new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onMessage }));
    this.worker.postMessage({ ...msg, id } as ToWorker, transfer);
    return { id, done };
  }

  /** Load a model (replacing any loaded one). */
  load(source: ModelSource, opts: LoadOptions = {}): Promise<ModelInfo> {
    const { onProgress, ...wire } = opts;
    return this.call<ModelInfo>({ type: 'load', source: wireSource(source), opts: wire }, (m) => {
      if (m.type === 'progress') onProgress?.(m.progress);
      else if (m.type === 'threads') {
        this.threads = m.threads;
        this.onThreads?.(m.threads);
      }
    }).done;
  }

  /** Generate from chat messages (the model's template), a text prompt, or token ids: one piece per token. */
  async *generate(input: GenerateInput, opts: WireGenerateOptions): AsyncGenerator<TokenPiece, GenerateStats> {
    const queue: TokenPiece[] = [];
    let wake: (() => void) | undefined;
    const { id, done } = this.call<GenerateStats>({ type: 'generate', input, opts }, (m) => {
      if (m.type !== 'token') return;
      queue.push({ token: m.token, text: m.text });
      wake?.();
    });
    this.running = id;
    let result: GenerateStats | undefined, error: unknown;
    done.then(
      (r) => {
        result = r;
        wake?.();
      },
      (e) => {
        error = e;
        wake?.();
      },
    );
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (error) throw error;
        if (result) return result;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      if (!result && !error) this.worker.postMessage({ type: 'abort', id } satisfies ToWorker); // the consumer left early
      if (this.running === id) this.running = undefined;
    }
  }

  /** Stop the running generation (it returns with finish 'abort'). */
  abort(): void {
    if (this.running !== undefined) this.worker.postMessage({ type: 'abort', id: this.running } satisfies ToWorker);
  }

  tokenize(text: string): Promise<number[]> {
    return this.call<number[]>({ type: 'tokenize', text }).done;
  }

  detokenize(ids: number[]): Promise<string> {
    return this.call<string>({ type: 'detokenize', ids }).done;
  }

  /** The prompt text the model's chat template makes of these messages (with the assistant's opening). */
  template(messages: ChatMessage[], enableThinking?: boolean): Promise<string> {
    return this.call<string>({ type: 'template', messages, enableThinking }).done;
  }

  /** End the worker (and every pending call, with an error). */
  dispose(): void {
    this.worker.terminate();
    this.failAll(new BrowserEngineError('AbortError', 'the engine was disposed'));
  }
}
