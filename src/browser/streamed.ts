// Loading a model whose bytes arrive asynchronously (remote.ts) through the synchronous loader
// (models/load_source.ts) without holding the file in JS memory: the loader runs once against a
// source that only records where each tensor goes when its destination is the backend's own
// memory (a weight's storage), then every recorded tensor is streamed there from the file, in
// file order, a few large Range requests in all. Tensors the loader needs at once (norms and
// biases it widens to f32, matrices it splits or converts) are fetched before it runs; one it
// asks for unexpectedly makes the load start again with that kind of tensor fetched first.
import type { TensorInfo, TensorSource } from '../formats/file.js';
import type { GgufFile } from '../formats/gguf.js';
import type { QwenConfig } from '../models/config.js';
import { ggufConfig, loadFromSource } from '../models/load_source.js';
import type { CausalLM } from '../models/model.js';
import type { Backend, KvType } from '../backend/backend.js';
import { fail, quote } from '../errors.js';
import type { RangeSource } from './remote.js';

/** A tensor the loader wants now, not recorded for later: the load restarts with it fetched. */
class NeedTensor extends Error {
  constructor(readonly tensor: string) {
    super(`tensor ${tensor} is needed while loading`);
  }
}

/** Tensors fetched before the loader runs: vectors and anything up to this size. */
const EAGER_BYTES = 1 << 20;
/** Two tensors at most this far apart in the file are read by one request (the gap is skipped):
 * large for the weights (few requests), small for the vectors fetched first (they sit between
 * matrices that are streamed later). */
const GAP_BYTES = 1 << 20,
  EAGER_GAP_BYTES = 64 << 10;

interface Pending {
  info: TensorInfo;
  dsts: Uint8Array[];
}

class RecordingSource implements TensorSource {
  readonly pending = new Map<string, Pending>();
  constructor(
    readonly path: string,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    private readonly eager: ReadonlyMap<string, Uint8Array>,
    private readonly stable: (b: ArrayBufferLike) => boolean,
  ) {}
  private info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) fail(`${this.path}: no tensor named ${quote(name)}`);
    return info;
  }
  readInto(name: string, dst: Uint8Array): void {
    const info = this.info(name);
    if (dst.length !== info.byteLength) throw new Error(`readInto ${name}: destination has ${dst.length} bytes, tensor has ${info.byteLength}`);
    const e = this.eager.get(name);
    if (e) dst.set(e);
    else if (this.stable(dst.buffer)) {
      const p = this.pending.get(name);
      if (p) p.dsts.push(dst);
      else this.pending.set(name, { info, dsts: [dst] });
    } else throw new NeedTensor(name);
  }
  readRange(name: string, start: number, dst: Uint8Array): void {
    this.info(name);
    const e = this.eager.get(name);
    if (!e) throw new NeedTensor(name);
    dst.set(e.subarray(start, start + dst.length));
  }
  close(): void {}
}

/**
 * Stream the bytes of `items` (tensors of `src`) into their destinations: tensors sorted by
 * offset, neighbours read by one request, each chunk copied where it belongs as it arrives.
 */
export async function streamTensors(src: RangeSource, items: Pending[], onBytes: (n: number) => void, signal?: AbortSignal, gap = GAP_BYTES): Promise<void> {
  const sorted = [...items].sort((a, b) => a.info.offset - b.info.offset);
  for (let i = 0; i < sorted.length; ) {
    let j = i + 1,
      end = sorted[i]!.info.offset + sorted[i]!.info.byteLength;
    while (j < sorted.length && sorted[j]!.info.offset - end <= gap) end = Math.max(end, sorted[j]!.info.offset + sorted[j++]!.info.byteLength);
    const run = sorted.slice(i, j),
      start = run[0]!.info.offset;
    const reader = (await src.stream(start, end - start, signal)).getReader();
    let at = start,
      k = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let c = value;
      while (c.length && k < run.length) {
        const t = run[k]!.info;
        if (at < t.offset) {
          const skip = Math.min(t.offset - at, c.length); // a gap between tensors
          c = c.subarray(skip);
          at += skip;
          continue;
        }
        const into = at - t.offset,
          n = Math.min(t.byteLength - into, c.length);
        for (const d of run[k]!.dsts) d.set(c.subarray(0, n), into);
        onBytes(n);
        c = c.subarray(n);
        at += n;
        if (into + n === t.byteLength) k++;
      }
    }
    if (at !== end) fail(`${src.name}: the response ended at byte ${at}, before byte ${end}; the connection dropped or the file changed`);
    i = j;
  }
}

/** The tensor-name pattern a needed tensor stands for (blk.7.attn_q.weight, model.layers.7.self_attn.q_proj.weight -> every layer's). */
const kindOf = (name: string) => name.replace(/^blk\.\d+\./, 'blk.*.').replace(/\blayers\.\d+\./, 'layers.*.');

export interface StreamedLoadOptions {
  ctxSize?: number;
  cacheType?: KvType;
  /** bytes read into the backend so far, of the total */
  onProgress?: (done: number, total: number) => void;
  onNote?: (note: string) => void;
  signal?: AbortSignal;
  /** tensors up to this size are fetched before the loader runs (default 1 MiB; tests use 0) */
  eagerBytes?: number;
}

/** A loaded model, its backend, and how many times the loader ran (1 + restarts for tensors it needed at once). */
export interface StreamedLoad {
  model: CausalLM;
  backend: Backend;
  attempts: number;
}

/** A model's headers and config, and where each file's bytes come from (TensorInfo.file -> source). */
export interface StreamedModel {
  path: string;
  format: 'gguf' | 'hf';
  config: QwenConfig;
  tensors: ReadonlyMap<string, TensorInfo>;
  sources: ReadonlyMap<string, RangeSource>;
}

/** Stream `items` from the files they lie in. */
async function streamAll(m: StreamedModel, items: Pending[], onBytes: (n: number) => void, signal?: AbortSignal, gap = GAP_BYTES): Promise<void> {
  const byFile = new Map<string, Pending[]>();
  for (const it of items) {
    const list = byFile.get(it.info.file);
    if (list) list.push(it);
    else byFile.set(it.info.file, [it]);
  }
  for (const [file, list] of byFile) {
    const src = m.sources.get(file);
    if (!src) fail(`${m.path}: tensor ${quote(list[0]!.info.name)} lies in ${quote(file)}, which no source reads`);
    await streamTensors(src, list, onBytes, signal, gap);
  }
}

/**
 * Load the model of GGUF header `g` whose bytes are `src` onto a backend from `makeBackend`
 * (called again if the load restarts; the backend must say which buffers are its memory).
 */
export function loadStreamed(g: GgufFile, src: RangeSource, makeBackend: () => Backend & { ownsBuffer(b: ArrayBufferLike): boolean }, opts: StreamedLoadOptions = {}): Promise<StreamedLoad> {
  return loadStreamedModel(ggufModel(g, src), makeBackend, opts);
}

/** The StreamedModel of GGUF header `g` whose bytes are `src` (every tensor's file is that one source). */
export function ggufModel(g: GgufFile, src: RangeSource): StreamedModel {
  return { path: src.name, format: 'gguf', config: ggufConfig(g), tensors: g.tensors, sources: new Map(g.tensorList.map((t) => [t.file, src])) };
}

/** loadStreamed for any format: the tensors of every file of `m`. */
export async function loadStreamedModel(m: StreamedModel, makeBackend: () => Backend & { ownsBuffer(b: ArrayBufferLike): boolean }, opts: StreamedLoadOptions = {}): Promise<StreamedLoad> {
  const config = m.config;
  const list = [...m.tensors.values()];
  const total = list.reduce((n, t) => n + t.byteLength, 0);
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    opts.onProgress?.(done, total);
  };
  const eager = new Map<string, Uint8Array>();
  const kinds = new Set<string>();
  const wanted = (t: TensorInfo) => t.shape.length === 1 || t.byteLength <= (opts.eagerBytes ?? EAGER_BYTES) || kinds.has(kindOf(t.name));
  for (let attempt = 0; ; attempt++) {
    const fetch = list.filter((t) => wanted(t) && !eager.has(t.name)).map((info) => ({ info, dsts: [new Uint8Array(info.byteLength)] }));
    await streamAll(m, fetch, attempt === 0 ? onBytes : () => {}, opts.signal, EAGER_GAP_BYTES);
    for (const f of fetch) eager.set(f.info.name, f.dsts[0]!);
    const backend = makeBackend();
    const source = new RecordingSource(m.path, m.tensors, eager, (b) => backend.ownsBuffer(b));
    let model: CausalLM;
    try {
      model = loadFromSource(m.format, config, source, { backend, ctxSize: opts.ctxSize, cacheType: opts.cacheType, onNote: opts.onNote });
    } catch (e) {
      backend.dispose?.();
      if (!(e instanceof NeedTensor) || attempt >= 8) throw e;
      kinds.add(kindOf(e.tensor));
      continue;
    }
    try {
      // tensors fetched up front and also wanted in the backend's memory were copied by readInto
      await streamAll(m, [...source.pending.values()], onBytes, opts.signal);
    } catch (e) {
      backend.dispose?.();
      throw e;
    }
    opts.onProgress?.(total, total);
    return { model, backend, attempts: attempt + 1 };
  }
}
