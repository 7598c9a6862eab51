// How an embedding model turns its per-token hidden states into one vector, read from the model's
// files, never guessed from its name: GGUF `{arch}.pooling_type` (llama.cpp's enum), or the
// sentence-transformers layout (`modules.json` naming a Pooling module whose config.json sets one
// pooling_mode_*). Also the special tokens its tokenizer wraps every input in (Qwen3-Embedding
// appends <|endoftext|>: tokenizer.json's TemplateProcessing, GGUF's add_eos_token).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail, quote } from '../errors.js';
import { ggufInFolder, openGgufModel } from '../formats/gguf_split.js';
import type { GgufValue } from '../formats/gguf.js';

/** llama.cpp's llama_pooling_type, by its GGUF number: 0 none, 1 mean, 2 cls, 3 last, 4 rank. */
export const GGUF_POOLING = ['none', 'mean', 'cls', 'last', 'rank'] as const;
export type Pooling = (typeof GGUF_POOLING)[number];
/** The poolings that give one embedding per input. */
export type VectorPooling = 'mean' | 'cls' | 'last';

export interface PoolingInfo {
  /** undefined: the files name no pooling rule (a plain causal LM) */
  pooling?: Pooling;
  /** where the rule (or its absence) was read, for messages */
  source: string;
  /** ids the tokenizer puts before / after every input */
  prepend: number[];
  append: number[];
}

const ST_MODES: [key: string, pooling: VectorPooling | undefined][] = [
  ['pooling_mode_lasttoken', 'last'],
  ['pooling_mode_mean_tokens', 'mean'],
  ['pooling_mode_cls_token', 'cls'],
  ['pooling_mode_max_tokens', undefined],
  ['pooling_mode_mean_sqrt_len_tokens', undefined],
  ['pooling_mode_weightedmean_tokens', undefined],
];

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** sentence-transformers: modules.json -> the Pooling module's config.json -> its one mode. */
function stPooling(dir: string): { pooling?: Pooling; source: string } {
  const modulesFile = path.join(dir, 'modules.json');
  if (!fs.existsSync(modulesFile)) return { source: `no modules.json in ${dir}` };
  const modules = readJson(modulesFile);
  if (!Array.isArray(modules)) fail(`${modulesFile}: expected a JSON array of modules`);
  const pool = modules.find((m) => isObj(m) && typeof m.type === 'string' && m.type.endsWith('.Pooling'));
  if (!pool) return { source: `no Pooling module in ${modulesFile}` };
  const cfgFile = path.join(dir, String(pool.path ?? ''), 'config.json');
  const cfg = readJson(cfgFile);
  if (!isObj(cfg)) fail(`${cfgFile}: expected a JSON object`);
  const on = ST_MODES.filter(([k]) => cfg[k] === true);
  if (on.length !== 1) fail(`${cfgFile}: expected exactly one pooling_mode_* set to true, found ${on.length ? on.map(([k]) => k).join(', ') : 'none'}`);
  const [key, pooling] = on[0]!;
  if (!pooling) fail(`${cfgFile}: ${key} is not implemented (lasttoken, mean_tokens and cls_token are)`);
  return { pooling, source: cfgFile };
}

/** tokenizer.json's post_processor: the special tokens TemplateProcessing puts around sequence A. */
function hfWrapping(dir: string): { prepend: number[]; append: number[] } {
  const file = path.join(dir, 'tokenizer.json');
  const out = { prepend: [] as number[], append: [] as number[] };
  if (!fs.existsSync(file)) return out;
  const tj = readJson(file);
  let pp = isObj(tj) ? tj.post_processor : undefined;
  if (isObj(pp) && pp.type === 'Sequence' && Array.isArray(pp.processors)) pp = pp.processors.find((p) => isObj(p) && p.type === 'TemplateProcessing');
  if (!isObj(pp) || pp.type !== 'TemplateProcessing' || !Array.isArray(pp.single)) return out;
  const specials = isObj(pp.special_tokens) ? pp.special_tokens : {};
  let seen = false;
  for (const piece of pp.single) {
    if (!isObj(piece)) continue;
    if (isObj(piece.Sequence)) {
      seen = true;
      continue;
    }
    const id = isObj(piece.SpecialToken) ? piece.SpecialToken.id : undefined;
    const sp = typeof id === 'string' ? specials[id] : undefined;
    if (!isObj(sp) || !Array.isArray(sp.ids) || !sp.ids.every((n) => Number.isInteger(n))) fail(`${file}: post_processor names special token ${quote(String(id))} without its ids`);
    (seen ? out.append : out.prepend).push(...(sp.ids as number[]));
  }
  return out;
}

/** The pooling rule and input wrapping of the model at `p` (a folder or a GGUF file). */
export function readPooling(p: string): PoolingInfo {
  const gguf = fs.statSync(p).isDirectory() ? (fs.existsSync(path.join(p, 'config.json')) ? undefined : ggufInFolder(p)) : p;
  if (gguf === undefined) return { ...stPooling(p), ...hfWrapping(p) };
  const g = openGgufModel(gguf);
  try {
    const m = g.metadata;
    const arch = String(m.get('general.architecture') ?? '');
    const key = `${arch}.pooling_type`;
    const num = (v: GgufValue | undefined) => (typeof v === 'number' || typeof v === 'bigint' ? Number(v) : undefined);
    const raw = m.get(key);
    let pooling: Pooling | undefined;
    if (raw !== undefined) {
      const n = num(raw);
      pooling = n === undefined ? undefined : GGUF_POOLING[n];
      if (!pooling) fail(`${g.path}: ${key} is ${quote(String(raw))}; llama.cpp's pooling types are 0 none, 1 mean, 2 cls, 3 last, 4 rank`);
    }
    const wrap = (flag: string, idKey: string): number[] => {
      if (m.get(flag) !== true) return [];
      const v = num(m.get(idKey));
      if (v === undefined) fail(`${g.path}: ${flag} is true but ${idKey} is missing`);
      return [v];
    };
    return {
      pooling,
      source: raw === undefined ? `no ${key} in ${g.path}` : `${key} = ${raw} in ${g.path}`,
      prepend: wrap('tokenizer.ggml.add_bos_token', 'tokenizer.ggml.bos_token_id'),
      append: wrap('tokenizer.ggml.add_eos_token', 'tokenizer.ggml.eos_token_id'),
    };
  } finally {
    g.close();
  }
}
