// The engine thread: loads the weights, builds its backend (whose kernel pool it drives: thread 0
// of a forward pass is this thread, not the HTTP one) and runs the Scheduler. It reads `submit` and
// `cancel` messages between forward passes (the scheduler yields to the event loop after each) and
// posts each step and each request's end; `task` messages (embeddings, rerank scores) run here too.
// Its own tokenizer is loaded on the first constraint or task.
import { parentPort, workerData } from 'node:worker_threads';
import { backendFromArgs } from '../backend/index.js';
import { constraintFromSpec } from '../generate/constrain/index.js';
import { Scheduler } from '../generate/scheduler.js';
import { openSpeculation } from '../generate/spec_open.js';
import { loadModel } from '../models/load.js';
import type { CausalLM } from '../models/model.js';
import { embed } from '../embed/embed.js';
import { rerank } from '../embed/rerank.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { ImageQueue, visionOf } from '../vision/jobs.js';
import { toWire, type EngineInit, type FromEngine, type ToEngine } from './protocol.js';

const port = parentPort!;
const init = workerData as EngineInit;
const post = (m: FromEngine) => port.postMessage(m);

let model: CausalLM | undefined;
/** the vision tower's encodes, one image at a time (absent: a text model) */
let images: ImageQueue | undefined;

function start(): Scheduler {
  const backend = backendFromArgs({ backend: init.backend, threads: init.threads });
  model = loadModel(init.path, {
    backend,
    quantize: init.quantize,
    checkTensors: init.checkTensors,
    ctxSize: init.ctxSize,
    cacheType: init.cacheType,
    lora: init.lora,
    mmproj: init.mmproj,
    onProgress: (done, total) => post({ type: 'progress', done, total }),
    onNote: (note) => post({ type: 'note', note }),
  });
  const spec = init.spec && openSpeculation(init.spec, { path: init.path, model }, { checkTensors: init.checkTensors, quantize: init.quantize, onNote: (note) => post({ type: 'note', note }) });
  const scheduler = new Scheduler(model, init.tokenBudget, init.parallel, init.cacheMem, spec); // a --cache-mem too small fails here
  const vision = visionOf(model);
  if (vision) images = new ImageQueue(vision);
  post({ type: 'ready', config: model.config, ...(vision && { vision: { kind: vision.kind } }) });
  return scheduler;
}

let scheduler: Scheduler | undefined;
try {
  scheduler = start();
} catch (e) {
  post({ type: 'failed', error: toWire(e) }); // the client reports it and ends this thread
}

let tokenizer: Tokenizer | undefined;
const cancels = new Map<number, AbortController>();

async function run(scheduler: Scheduler, m: Extract<ToEngine, { type: 'submit' }>): Promise<void> {
  const ac = new AbortController();
  cancels.set(m.id, ac);
  try {
    const { constraint: spec, ...opts } = m.opts;
    const constraint = spec && constraintFromSpec((tokenizer ??= loadTokenizer(init.path)), spec);
    const it = scheduler.submit(m.prompt, { ...opts, constraint, signal: ac.signal, onCached: (tokens) => post({ type: 'cached', id: m.id, tokens }) });
    for (;;) {
      const r = await it.next();
      if (r.done) return post({ type: 'end', id: m.id, finish: r.value, stats: scheduler.stats });
      post({ type: 'step', id: m.id, step: r.value });
    }
  } catch (e) {
    post({ type: 'end', id: m.id, finish: 'error', error: toWire(e), stats: scheduler.stats });
  } finally {
    cancels.delete(m.id);
  }
}

/** Embeddings and rerank scores: their passes interleave with the scheduler's (both yield between passes). */
async function task(m: Extract<ToEngine, { type: 'task' }>): Promise<void> {
  const ac = new AbortController();
  cancels.set(m.id, ac);
  try {
    const t = m.task;
    if (t.kind === 'image') {
      if (!images) throw new Error('this model has no vision tower');
      const e = await images.encode(t.bytes, t.hash, ac.signal);
      const rows = e.rows.slice(); // its own buffer (the tower's may be a view): moved, not copied
      return port.postMessage({ type: 'taskDone', id: m.id, value: { ...e, rows } } satisfies FromEngine, [rows.buffer]);
    }
    const em = { model: model!, tokenizer: (tokenizer ??= loadTokenizer(init.path)), path: init.path };
    const value = t.kind === 'embed' ? await embed(em, t.inputs, { ...t.opts, signal: ac.signal }) : await rerank(em, t.query, t.documents, { ...t.opts, signal: ac.signal });
    post({ type: 'taskDone', id: m.id, value });
  } catch (e) {
    post({ type: 'taskDone', id: m.id, error: toWire(e) });
  } finally {
    cancels.delete(m.id);
  }
}

if (scheduler) {
  const s = scheduler;
  port.on('message', (m: ToEngine) => {
    if (m.type === 'submit') void run(s, m);
    else if (m.type === 'task') void task(m);
    else cancels.get(m.id)?.abort();
  });
}
