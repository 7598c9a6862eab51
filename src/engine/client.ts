// The HTTP thread's side of the engine thread: the same Engine interface as an in-process
// Scheduler (submit / load / activeCount), so the chat layer and the server do not know which
// they drive. Requests are checked here first (checkRequest: bad parameters still throw at once,
// with the Scheduler's messages); steps come back as messages. A dead engine thread ends every
// open request with an error, and later ones fail at submit; the HTTP thread keeps serving.
import { Worker } from 'node:worker_threads';
import { fail, QwenError } from '../errors.js';
import { DEFAULT_PARALLEL, StepQueue, type Engine, type SchedulerStats } from '../generate/scheduler.js';
import { checkRequest, type FinishReason, type GenerateOptions, type Step } from '../generate/sequence.js';
import type { QwenConfig } from '../models/config.js';
import type { EmbedInput, EmbedOptions, EmbedResult } from '../embed/embed.js';
import type { RerankOptions, RerankResult } from '../embed/rerank.js';
import type { ImageEmbedding } from '../vision/types.js';
import type { ChatVision } from '../vision/jobs.js';
import type { EngineInit, EngineTask, FromEngine, TaskResult, ToEngine, WireError } from './protocol.js';

export interface EngineClientOptions extends Omit<EngineInit, 'path'> {
  /** progress of reading the weights, in bytes */
  onProgress?: (done: number, total: number) => void;
  /** one-line remarks about the model (default: written to stderr) */
  onNote?: (note: string) => void;
}

const fromWire = (e: WireError): Error => {
  const err = e.name === 'QwenError' ? new QwenError(e.message) : new Error(e.message);
  if (e.name !== 'QwenError') err.name = e.name; // ImageError, ImageQueueFull: the server maps them by name
  return err;
};

interface Open {
  q: StepQueue;
  detach(): void;
  onCached?: (tokens: number) => void;
}
interface Pending {
  settle(value: unknown, error?: Error): void;
}

export class EngineClient implements Engine {
  readonly maxActive: number;
  stats: SchedulerStats = { requests: 0, promptTokens: 0, prefixHits: 0, prefixMisses: 0, cachedTokens: 0 };
  private readonly open = new Map<number, Open>();
  private readonly tasks = new Map<number, Pending>();
  private nextId = 1;
  private dead?: Error;
  private closing = false;
  /** the model's vision tower, run on the engine thread (absent: a text model) */
  readonly vision?: ChatVision;

  private constructor(
    private readonly worker: Worker,
    readonly config: QwenConfig,
    opts: EngineClientOptions,
    vision?: { kind: string },
  ) {
    this.maxActive = opts.parallel ?? DEFAULT_PARALLEL;
    if (vision) this.vision = { kind: vision.kind, encode: (bytes, hash, signal) => this.encodeImage(bytes, hash, signal) };
    worker.on('message', (m: FromEngine) => this.receive(m));
    worker.on('error', (e) => this.fault(`the engine thread failed: ${e.message}`));
    worker.on('exit', (code) => {
      if (!this.closing) this.fault(`the engine thread exited (code ${code})`);
    });
    worker.unref();
  }

  /** Start an engine thread on the model at `path`; resolves once its weights are loaded. */
  static start(path: string, opts: EngineClientOptions = {}): Promise<EngineClient> {
    const { onProgress, onNote, ...rest } = opts;
    const init: EngineInit = { path, ...rest };
    // compiled: worker.js beside this file; under tsx (tests, development) the .ts source
    const ts = import.meta.url.endsWith('.ts');
    const worker = new Worker(new URL(ts ? './worker.ts' : './worker.js', import.meta.url), { workerData: init, execArgv: ts ? ['--import', 'tsx'] : [] });
    return new Promise((resolve, reject) => {
      const loading = (m: FromEngine) => {
        if (m.type === 'progress') onProgress?.(m.done, m.total);
        else if (m.type === 'note') (onNote ?? ((n) => process.stderr.write(`note: ${n}\n`)))(m.note);
        else if (m.type === 'ready') {
          done();
          resolve(new EngineClient(worker, m.config, opts, m.vision));
        } else if (m.type === 'failed') {
          done();
          void worker.terminate();
          reject(fromWire(m.error));
        }
      };
      const died = (e: Error | number) => {
        done();
        reject(new Error(`the engine thread ${typeof e === 'number' ? `exited (code ${e})` : `failed: ${e.message}`} while loading`));
      };
      const done = () => {
        worker.off('message', loading);
        worker.off('error', died);
        worker.off('exit', died);
      };
      worker.on('message', loading);
      worker.on('error', died);
      worker.on('exit', died);
    });
  }

  /** requests generating or waiting (until the engine thread has reported their end) */
  get load(): number {
    return this.open.size;
  }

  /** requests generating now: the engine admits them first come, first served, up to maxActive */
  get activeCount(): number {
    return Math.min(this.open.size, this.maxActive);
  }

  submit(prompt: readonly number[], o: GenerateOptions): AsyncGenerator<Step, FinishReason> {
    checkRequest(this.config, prompt, o);
    const { signal, constraint, onCached, ...rest } = o;
    if (constraint && !constraint.spec) fail('this constraint cannot be sent to the engine thread: it has no spec (build it with jsonConstraint or toolCallConstraint)');
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    const q = new StepQueue();
    const cancel = () => this.send({ type: 'cancel', id });
    signal?.addEventListener('abort', cancel, { once: true });
    this.open.set(id, { q, detach: () => signal?.removeEventListener('abort', cancel), onCached });
    this.send({ type: 'submit', id, prompt: Array.from(prompt), opts: { ...rest, constraint: constraint?.spec } });
    if (signal?.aborted) cancel();
    this.worker.ref(); // an open request keeps the process alive, as an in-process one does
    return q.iterate(cancel);
  }

  /** Embeddings computed on the engine thread (embed() there; the same options, results and errors). */
  embed(inputs: readonly EmbedInput[], opts: EmbedOptions = {}): Promise<EmbedResult> {
    const { signal, ...rest } = opts;
    return this.task({ kind: 'embed', inputs: inputs.map((x) => (typeof x === 'string' ? x : Array.from(x))), opts: rest }, signal);
  }

  /** Rerank scores computed on the engine thread (rerank() there). */
  rerank(query: string, documents: readonly string[], opts: RerankOptions = {}): Promise<RerankResult> {
    const { signal, ...rest } = opts;
    return this.task({ kind: 'rerank', query, documents: [...documents], opts: rest }, signal);
  }

  /** An image decoded and encoded on the engine thread (one at a time there; ImageError for bad bytes). */
  encodeImage(bytes: Uint8Array, hash: string, signal?: AbortSignal): Promise<ImageEmbedding> {
    return this.task({ kind: 'image', bytes, hash }, signal);
  }

  private task<K extends EngineTask['kind']>(task: Extract<EngineTask, { kind: K }>, signal?: AbortSignal): Promise<TaskResult[K]> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const cancel = () => this.send({ type: 'cancel', id });
    signal?.addEventListener('abort', cancel, { once: true });
    this.worker.ref();
    return new Promise<TaskResult[K]>((resolve, reject) => {
      this.tasks.set(id, {
        settle: (value, error) => {
          this.tasks.delete(id);
          signal?.removeEventListener('abort', cancel);
          if (!this.open.size && !this.tasks.size) this.worker.unref();
          if (error) reject(error);
          else resolve(value as TaskResult[K]);
        },
      });
      this.send({ type: 'task', id, task });
      if (signal?.aborted) cancel();
    });
  }

  /** End the engine thread; open requests end with an error. */
  async close(): Promise<void> {
    this.closing = true;
    this.fault('the engine was closed');
    await this.worker.terminate();
  }

  private send(m: ToEngine): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  private receive(m: FromEngine): void {
    if (m.type === 'step') this.open.get(m.id)?.q.push(m.step);
    else if (m.type === 'cached') this.open.get(m.id)?.onCached?.(m.tokens);
    else if (m.type === 'end') {
      this.stats = m.stats;
      const r = this.open.get(m.id);
      if (!r) return;
      this.open.delete(m.id);
      r.detach();
      r.q.close(m.finish, m.error && fromWire(m.error));
      if (!this.open.size && !this.tasks.size) this.worker.unref();
    } else if (m.type === 'taskDone') this.tasks.get(m.id)?.settle(m.value, m.error && fromWire(m.error));
    else if (m.type === 'note') process.stderr.write(`note: ${m.note}\n`);
  }

  private fault(why: string): void {
    this.dead ??= new Error(why);
    for (const r of this.open.values()) {
      r.detach();
      r.q.close('error', this.dead);
    }
    this.open.clear();
    for (const t of [...this.tasks.values()]) t.settle(undefined, this.dead);
    this.worker.unref();
  }
}
