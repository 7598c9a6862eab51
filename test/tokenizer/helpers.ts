// Tokenizer test helpers: the reference fixtures (gzip'd tokenizer files unpacked into a temp
// folder, shared by parallel test processes), the test vectors, a seeded random generator.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
export { rng } from '../helpers.js';
import { FIXTURES, fixtureDir } from '../helpers.js';

export { ROOT } from '../helpers.js';
export const FIX = path.join(FIXTURES, 'tokenizer');

export type Family = 'qwen3' | 'qwen2.5' | 'qwen3.5';

const created: string[] = [];
process.on('exit', () => {
  for (const d of created) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temp folder (removed at exit). */
export function tempDir(tag = 'tok'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `qwen-ts-${tag}-`));
  created.push(d);
  return d;
}

/** The unpacked model folder of a fixture tokenizer (every *.gz gunzipped, shared temp copy). */
export function fixtureModelDir(family: Family): string {
  return fixtureDir(`tokenizer/${family}`);
}

/**
 * A temp model folder holding some of the fixture's files (e.g. only vocab.json + merges.txt +
 * tokenizer_config.json for the older layout) plus extra files given as text.
 */
export function modelDirWith(family: Family, keep: string[], extra: Record<string, string> = {}): string {
  const src = fixtureModelDir(family);
  const d = tempDir(family);
  for (const f of keep) fs.copyFileSync(path.join(src, f), path.join(d, f));
  for (const [f, text] of Object.entries(extra)) fs.writeFileSync(path.join(d, f), text);
  return d;
}

const cache = new Map<Family, Tokenizer>();
/** The fixture tokenizer, loaded from tokenizer.json (cached per process). */
export function fixtureTokenizer(family: Family): Tokenizer {
  let t = cache.get(family);
  if (!t) {
    t = loadTokenizer(fixtureModelDir(family));
    cache.set(family, t);
  }
  return t;
}

export interface Vector {
  source: string;
  text: string;
  ids: number[];
}

/** llama.cpp's ggml-vocab-qwen2 cases (both versions) and transformers' Qwen2 integration cases. */
export function vocabVectors(): Vector[] {
  const out: Vector[] = [];
  for (const dir of ['', '2025-09']) {
    const base = path.join(FIX, 'vocab-tests', dir, 'ggml-vocab-qwen2.gguf');
    const inp = fs.readFileSync(`${base}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
    const expected = fs.readFileSync(`${base}.out`, 'utf8').split('\n');
    // the .inp file ends with a separator, leaving one empty trailing element
    if (inp[inp.length - 1] === '') inp.pop();
    inp.forEach((text, i) => {
      const line = expected[i]!.trim();
      out.push({ source: `llama.cpp ${dir || 'original'} #${i}`, text, ids: line === '' ? [] : line.split(/\s+/).map(Number) });
    });
  }
  const tf = JSON.parse(fs.readFileSync(path.join(FIX, 'vocab-tests', 'transformers-qwen2-tokenizer-integration.json'), 'utf8')) as { cases: { text: string; ids: number[] }[] };
  tf.cases.forEach((c, i) => out.push({ source: `transformers #${i}`, text: c.text, ids: c.ids }));
  return out;
}

export function readFixtureJson<T>(rel: string): T {
  return JSON.parse(fs.readFileSync(path.join(FIX, rel), 'utf8')) as T;
}
