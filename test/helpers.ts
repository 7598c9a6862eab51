// Test helpers: fixture paths (gzip'd fixtures unpacked once into a temp folder), float comparisons.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WasmBackend } from '../src/backend/wasm.js';
import type { DType } from '../src/formats/dtype.js';

/** The repository root, found upward from this file (compiled tests run from dist/test/, tsx from test/). */
export const ROOT = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json'))) {
    if (path.dirname(d) === d) throw new Error('repository root not found');
    d = path.dirname(d);
  }
  return d;
})();
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

/**
 * A fixture folder with every `*.gz` file unpacked next to the rest, in a temp folder named by
 * the files' names and sizes (a changed fixture gets a fresh copy). Files appear by atomic
 * rename, so parallel test processes can share the copy.
 */
export function fixtureDir(rel: string): string {
  const src = path.join(FIXTURES, rel);
  const entries = fs.readdirSync(src);
  if (!entries.some((e) => e.endsWith('.gz'))) return src;
  const stamp = entries.map((e) => `${e}:${fs.statSync(path.join(src, e)).size}`).join(',');
  let h = 0;
  for (let i = 0; i < stamp.length; i++) h = (Math.imul(h, 31) + stamp.charCodeAt(i)) | 0;
  const dst = path.join(os.tmpdir(), `qwen-ts-fixtures-${process.getuid?.() ?? 0}`, `${rel}-${(h >>> 0).toString(16)}`);
  fs.mkdirSync(dst, { recursive: true });
  for (const e of entries) {
    const to = path.join(dst, e.replace(/\.gz$/, ''));
    if (fs.existsSync(to)) continue;
    const raw = fs.readFileSync(path.join(src, e));
    const tmp = `${to}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, e.endsWith('.gz') ? zlib.gunzipSync(raw) : raw);
    fs.renameSync(tmp, to);
  }
  return dst;
}

export function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/** Largest |a-b| - (atol + rtol*|b|) excess, and the max abs difference. */
export function compare(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0): { maxAbs: number; ok: boolean; worst: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let maxAbs = 0,
    ok = true,
    worst = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= atol + rtol * Math.abs(b[i]!))) {
      if (ok) worst = i;
      ok = false;
    }
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
  }
  return { maxAbs, ok, worst };
}

/** Relative error ||a - ref|| / ||ref|| (root of summed squares over ref's length). */
export function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0,
    n = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (a[i]! - ref[i]!) ** 2;
    n += ref[i]! ** 2;
  }
  return Math.sqrt(d / n);
}

export function argmax(a: ArrayLike<number>, off = 0, n = a.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i]! > a[off + best]!) best = i;
  return best;
}

export function tmpDir(prefix = 'qwen-ts-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * A chat-ready model folder: the tiny real-vocabulary weights (random; Qwen3: 151,936 rows, Qwen3.5:
 * 248,320) with the official tokenizer and chat template of that family, assembled in a temp folder.
 */
export function chatModelDir(family: 'qwen3' | 'qwen3.5' = 'qwen3'): string {
  const weights = fixtureDir(family === 'qwen3' ? 'models/qwen3-tiny-realvocab' : 'models/qwen35-tiny-realvocab');
  const dst = path.join(os.tmpdir(), `qwen-ts-fixtures-${process.getuid?.() ?? 0}`, `${family}-tiny-chat-4k`);
  fs.mkdirSync(dst, { recursive: true });
  const put = (name: string, data: () => Buffer) => {
    const to = path.join(dst, name);
    if (fs.existsSync(to)) return;
    const tmp = `${to}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, data());
    fs.renameSync(tmp, to);
  };
  // a longer context than the fixture's 256 positions, so tool definitions fit in a prompt
  // (max_position_embeddings only bounds the cache; the reference logits do not depend on it)
  put('config.json', () => Buffer.from(JSON.stringify({ ...JSON.parse(fs.readFileSync(path.join(weights, 'config.json'), 'utf8')), max_position_embeddings: 4096 })));
  put('model.safetensors', () => fs.readFileSync(path.join(weights, 'model.safetensors')));
  const tokenizer = fixtureDir(`tokenizer/${family}`);
  put('tokenizer.json', () => fs.readFileSync(path.join(tokenizer, 'tokenizer.json')));
  put('tokenizer_config.json', () => fs.readFileSync(path.join(tokenizer, 'tokenizer_config.json')));
  return dst;
}

/** Deterministic PRNG (mulberry32), so a failing random case can be reproduced from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Run a command in this process, returning the text it wrote to stdout and stderr. Binary writes
 * pass through: under `node --test` they are the runner's own reports to its parent.
 */
export async function capture(f: () => Promise<void>): Promise<{ out: string; err: string }> {
  const out: string[] = [],
    err: string[] = [];
  const ow = process.stdout.write,
    ew = process.stderr.write;
  const hook = (orig: typeof ow, into: string[]) =>
    function (this: unknown, s: string | Uint8Array, ...rest: unknown[]) {
      if (typeof s === 'string') {
        into.push(s);
        return true;
      }
      return (orig as (...a: unknown[]) => boolean).call(this, s, ...rest);
    } as typeof ow;
  process.stdout.write = hook(ow, out);
  process.stderr.write = hook(ew, err);
  try {
    await f();
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  return { out: out.join(''), err: err.join('') };
}

/**
 * WebAssembly backends for kernel tests, for each thread count: relaxed SIMD, plain SIMD, and,
 * where the engine has the exact vpdpbusd form (Node 24+ on x86 with AVX-VNNI), relaxed SIMD
 * without it too, so both Q8_0 tiles run. grain 1e-9 splits even one-row ops over every thread;
 * poison makes unwritten output read NaN.
 */
export function wasmVariants(threadCounts: number[]): WasmBackend[] {
  const probe = new WasmBackend({ threads: 1 });
  const u8dot = probe.u8dot;
  probe.dispose();
  const configs = [{ relaxed: true }, { relaxed: false }, ...(u8dot ? [{ relaxed: true, u8dot: false }] : [])];
  return threadCounts.flatMap((threads) => configs.map((c) => new WasmBackend({ threads, ...c, grain: 1e-9, spinMs: 0.05, poison: true })));
}

/** Throws naming the first element whose float bits differ (batch / thread invariance checks). */
export function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: lengths ${a.length} vs ${b.length}`);
  const ia = new Int32Array(a.buffer, a.byteOffset, a.length),
    ib = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ia[i] !== ib[i]) throw new Error(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
}

/** x [T, K] (values xs) times a fresh [N, K] weight of the given stored bytes on backend be (copied out). */
export function product(be: WasmBackend, dtype: DType, bytes: Uint8Array, N: number, K: number, xs: Float32Array, T: number): Float32Array {
  const w = be.weight(dtype, [N, K]);
  w.bytes.set(bytes);
  const x = be.alloc(T * K),
    out = be.alloc(T * N);
  x.set(xs);
  be.matmul(out, x, w, T);
  return Float32Array.from(out);
}

/** fn throws a one-line QwenError whose message matches re (the bad-input tests' check). */
export function expectError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.equal(e.name, 'QwenError', e.stack);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return true;
  });
}

/** Listen on a free loopback port: the server's base URL. */
export async function listen(s: Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A case of a model fixture's reference.json: llama.cpp's logits for a prompt (see PROVENANCE.md). */
export interface RefCase {
  name: string;
  prompt_ids: number[];
  greedy_generated_ids: number[];
  prefill_logits_file: { path: string };
  incremental_logits_file: { path: string };
}

/** Logits against llama.cpp's reference: llama.cpp's f32 and a float64 numpy pass differ by < 1e-4 there. */
export const PARITY_ATOL = 1e-3;
export const PARITY_RTOL = 1e-4;
