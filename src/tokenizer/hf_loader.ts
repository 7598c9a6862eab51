// Reads a Hugging Face tokenizer folder into a TokenizerSpec: tokenizer.json (fast layout) or
// vocab.json + merges.txt (slow layout), with tokenizer_config.json for added tokens, special
// tokens and the chat template, and generation_config.json / config.json for the stop tokens.
// Only what Qwen's byte-level BPE uses is accepted; anything else is a clear error, not a guess.
import { nodeFs, nodePath } from '../node_builtin.js';
import { fail } from '../errors.js';
import type { AddedToken } from './added_tokens.js';
import { GPT2_PATTERN, QWEN2_PATTERN } from './pretokenize.js';
import type { Merge } from './bpe.js';
import type { TokenizerSpec } from './tokenizer.js';

type Json = Record<string, unknown>;
/** How the loader reads a model folder's files: the file system (Node, Bun, Deno), or files already
 * in memory (a browser fetched them: hfTokenizerSpecFromFiles). */
interface FolderIo {
  join(dir: string, name: string): string;
  exists(file: string): boolean;
  /** the file's text; a missing file throws an error with code ENOENT */
  text(file: string): string;
}
const nodeIo: FolderIo = { join: (d, n) => nodePath().join(d, n), exists: (f) => nodeFs().existsSync(f), text: (f) => nodeFs().readFileSync(f, 'utf8') };
let io: FolderIo = nodeIo;

/** loadHfTokenizerSpec on files in memory (name in the folder -> text); `dir` names the folder (a URL) in errors. */
export function hfTokenizerSpecFromFiles(dir: string, files: ReadonlyMap<string, string>): TokenizerSpec {
  const name = (f: string) => f.slice(dir.length + 1);
  const prev = io;
  io = {
    join: (d, n) => `${d}/${n}`,
    exists: (f) => files.has(name(f)),
    text(f) {
      const t = files.get(name(f));
      if (t === undefined) throw Object.assign(new Error(`${f}: not found`), { code: 'ENOENT' });
      return t;
    },
  };
  try {
    return loadHfTokenizerSpec(dir);
  } finally {
    io = prev;
  }
}
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse a JSON file; undefined when it does not exist, a clear error when it is malformed. */
export function readJson(file: string, what = 'an object'): Json | undefined {
  let text: string;
  try {
    text = io.text(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(v)) fail(`${file}: expected ${what} at the top level`);
  return v;
}

/** Text of a special-token entry in tokenizer_config.json: "x" or {"content": "x"}. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

function parseAdded(v: unknown, file: string, where: string): AddedToken {
  if (!isObj(v) || typeof v.content !== 'string' || !Number.isInteger(v.id)) fail(`${file}: ${where} must be an object with an integer "id" and a string "content"`);
  return {
    id: v.id as number,
    content: v.content,
    special: v.special === true,
    lstrip: v.lstrip === true,
    rstrip: v.rstrip === true,
    single_word: v.single_word === true,
    normalized: v.normalized === true,
  };
}

/** The split regex and normalization a tokenizer.json describes, if it is one we implement. */
function textPipeline(tj: Json, file: string): { pattern: string; nfc: boolean } {
  const norm = tj.normalizer;
  let nfc = false;
  if (isObj(norm)) {
    if (norm.type === 'NFC') nfc = true;
    else fail(`${file}: normalizer ${JSON.stringify(norm.type)} is not supported (Qwen uses NFC or none)`);
  } else if (norm != null) fail(`${file}: "normalizer" must be an object or null`);

  const pre = tj.pre_tokenizer;
  const unsupported = () => fail(`${file}: this pre_tokenizer is not supported (Qwen's is a regex Split then ByteLevel): ${JSON.stringify(pre).slice(0, 300)}`);
  if (!isObj(pre)) return unsupported();
  const byteLevelOk = (p: unknown) => isObj(p) && p.type === 'ByteLevel' && !p.add_prefix_space;
  if (pre.type === 'ByteLevel' && byteLevelOk(pre) && pre.use_regex !== false) return { pattern: GPT2_PATTERN, nfc };
  if (pre.type !== 'Sequence' || !Array.isArray(pre.pretokenizers) || pre.pretokenizers.length !== 2) return unsupported();
  const [split, bl] = pre.pretokenizers as unknown[];
  if (!isObj(split) || split.type !== 'Split' || split.behavior !== 'Isolated' || split.invert === true) return unsupported();
  if (!isObj(split.pattern) || typeof split.pattern.Regex !== 'string') return unsupported();
  if (!byteLevelOk(bl) || (bl as Json).use_regex !== false) return unsupported();
  return { pattern: split.pattern.Regex, nfc };
}

function loadFast(_dir: string, file: string): Omit<TokenizerSpec, 'eosTokenIds' | 'source'> {
  const tj = readJson(file, 'a tokenizer object')!;
  const model = tj.model;
  if (!isObj(model)) fail(`${file}: missing "model" object`);
  if (model.type !== 'BPE') fail(`${file}: model type ${JSON.stringify(model.type)} is not supported (Qwen uses BPE)`);
  if (model.byte_fallback === true) fail(`${file}: byte_fallback BPE is not supported (Qwen uses byte-level BPE)`);
  if ((model.continuing_subword_prefix ?? '') !== '' || (model.end_of_word_suffix ?? '') !== '') fail(`${file}: BPE with subword prefixes/suffixes is not supported`);
  if (model.dropout != null && model.dropout !== 0) fail(`${file}: BPE dropout ${String(model.dropout)} is not supported (it makes encoding random)`);
  const dec = tj.decoder;
  if (dec != null && !(isObj(dec) && dec.type === 'ByteLevel')) fail(`${file}: decoder ${JSON.stringify(isObj(dec) ? dec.type : dec)} is not supported (Qwen uses ByteLevel)`);
  if (!isObj(model.vocab)) fail(`${file}: "model.vocab" must be an object of token -> id`);
  const vocab = vocabMap(model.vocab, file);
  if (!Array.isArray(model.merges)) fail(`${file}: "model.merges" must be an array`);
  // each rule is checked when the BPE model is built
  const merges = model.merges as Merge[];
  if (tj.added_tokens != null && !Array.isArray(tj.added_tokens)) fail(`${file}: "added_tokens" must be an array`);
  const addedTokens = ((tj.added_tokens ?? []) as unknown[]).map((t, i) => parseAdded(t, file, `added_tokens[${i}]`));
  return { vocab, merges, addedTokens, ...textPipeline(tj, file), ignoreMerges: model.ignore_merges === true };
}

function vocabMap(v: Json, file: string): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const t in v) {
    const id = v[t];
    if (!Number.isInteger(id) || (id as number) < 0) fail(`${file}: vocabulary entry ${JSON.stringify(t)} has id ${JSON.stringify(id)}, not a non-negative integer`);
    vocab.set(t, id as number);
  }
  return vocab;
}

/** Older layout: vocab.json + merges.txt, added tokens from tokenizer_config.json. */
function loadSlow(dir: string, cfg: Json | undefined): Omit<TokenizerSpec, 'eosTokenIds' | 'source'> {
  const vfile = io.join(dir, 'vocab.json'),
    mfile = io.join(dir, 'merges.txt');
  const vocab = vocabMap(readJson(vfile, 'an object of token -> id')!, vfile);
  if (!io.exists(mfile)) fail(`${dir}: has vocab.json but no merges.txt`);
  const merges: string[] = [];
  const lines = io.text(mfile).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    // transformers skips the "#version" header and blank lines
    if (line === '' || (i === 0 && line.startsWith('#version'))) continue;
    merges.push(line);
  }
  const cfile = io.join(dir, 'tokenizer_config.json');
  const addedTokens: AddedToken[] = [];
  const dec = cfg?.added_tokens_decoder;
  if (isObj(dec)) {
    for (const [id, t] of Object.entries(dec)) addedTokens.push(parseAdded({ ...(isObj(t) ? t : {}), id: Number(id) }, cfile, `added_tokens_decoder["${id}"]`));
  }
  const atFile = io.join(dir, 'added_tokens.json');
  const extra = readJson(atFile);
  if (extra) {
    const specials = new Set<string>();
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const c = tokenContent(cfg?.[k]);
      if (c) specials.add(c);
    }
    for (const c of Array.isArray(cfg?.additional_special_tokens) ? cfg.additional_special_tokens : []) {
      const s = tokenContent(c);
      if (s) specials.add(s);
    }
    for (const [content, id] of Object.entries(extra)) {
      if (addedTokens.some((t) => t.content === content)) continue;
      addedTokens.push(parseAdded({ id, content, special: specials.has(content) }, atFile, JSON.stringify(content)));
    }
  }
  addedTokens.sort((a, b) => a.id - b.id);
  // The slow GPT2Tokenizer uses GPT-2's regex and no normalizer; Qwen2Tokenizer uses Qwen's and NFC,
  // or the config's "pretokenize_regex" (Qwen3.5 writes its [\p{L}\p{M}]+ regex there).
  const gpt2 = cfg?.tokenizer_class === 'GPT2Tokenizer';
  const custom = cfg?.pretokenize_regex;
  if (custom !== undefined && typeof custom !== 'string') fail(`${cfile}: "pretokenize_regex" must be a string`);
  return { vocab, merges, addedTokens, pattern: gpt2 ? GPT2_PATTERN : (custom ?? QWEN2_PATTERN), nfc: !gpt2 };
}

/** The chat template of an HF folder: chat_template.jinja, tokenizer_config.json, or chat_template.json. */
function chatTemplateOf(dir: string, cfg: Json | undefined): string | undefined {
  const jinja = io.join(dir, 'chat_template.jinja');
  if (io.exists(jinja)) return io.text(jinja);
  const pick = (t: unknown, file: string): string | undefined => {
    if (t == null) return undefined;
    if (typeof t === 'string') return t;
    // a list of named templates: the one called "default"
    if (Array.isArray(t)) {
      const d = t.find((x) => isObj(x) && x.name === 'default');
      if (isObj(d) && typeof d.template === 'string') return d.template;
    }
    fail(`${file}: "chat_template" must be a string or a list of {name, template} with a "default"`);
  };
  const fromCfg = pick(cfg?.chat_template, io.join(dir, 'tokenizer_config.json'));
  if (fromCfg !== undefined) return fromCfg;
  const jfile = io.join(dir, 'chat_template.json');
  return pick(readJson(jfile)?.chat_template, jfile);
}

function ids(v: unknown): number[] {
  if (Number.isInteger(v)) return [v as number];
  if (Array.isArray(v)) return v.filter((x) => Number.isInteger(x)) as number[];
  return [];
}

/**
 * tokenizer_config.json's added_tokens_decoder, as transformers applies it over tokenizer.json:
 * its "special" flag wins, and tokens it lists that tokenizer.json lacks are added (in id order).
 * Qwen3.5's tokenizer.json has 26 added tokens, its config 33: the 7 audio/TTS tokens
 * 248070..248076 exist only in the config, and transformers gives them exactly those ids (the
 * next free ones). A listed id that another token already holds cannot be reproduced: an error.
 */
function mergeConfigAddedTokens(base: { vocab: Map<string, number>; addedTokens: AddedToken[] }, cfg: Json | undefined, cfile: string): void {
  const dec = cfg?.added_tokens_decoder;
  if (dec == null) return;
  if (!isObj(dec)) fail(`${cfile}: "added_tokens_decoder" must be an object of id -> token`);
  const byId = new Map(base.addedTokens.map((t) => [t.id, t]));
  const entries = Object.entries(dec).map(([id, t]) => parseAdded({ ...(isObj(t) ? t : {}), id: /^\d+$/.test(id) ? Number(id) : id }, cfile, `added_tokens_decoder["${id}"]`));
  let vocabIds: Map<number, string> | undefined;
  for (const t of entries.sort((a, b) => a.id - b.id)) {
    const have = byId.get(t.id);
    if (have) {
      if (have.content !== t.content) fail(`${cfile}: added_tokens_decoder["${t.id}"] is ${JSON.stringify(t.content)} but tokenizer.json's added token ${t.id} is ${JSON.stringify(have.content)}`);
      const raw = (dec as Json)[String(t.id)];
      if (isObj(raw) && typeof raw.special === 'boolean') have.special = raw.special;
      continue;
    }
    vocabIds ??= new Map([...base.vocab].map(([k, v]) => [v, k]));
    const clash = vocabIds.get(t.id) ?? base.addedTokens.find((a) => a.content === t.content)?.content;
    if (clash !== undefined) fail(`${cfile}: added_tokens_decoder["${t.id}"] ${JSON.stringify(t.content)} collides with ${JSON.stringify(clash)} already in tokenizer.json`);
    base.addedTokens.push(t);
    byId.set(t.id, t);
  }
  base.addedTokens.sort((a, b) => a.id - b.id);
}

export function loadHfTokenizerSpec(dir: string): TokenizerSpec {
  const tfile = io.join(dir, 'tokenizer.json');
  const cfg = readJson(io.join(dir, 'tokenizer_config.json'));
  let base: Omit<TokenizerSpec, 'eosTokenIds' | 'source'>;
  if (io.exists(tfile)) base = loadFast(dir, tfile);
  else if (io.exists(io.join(dir, 'vocab.json'))) base = loadSlow(dir, cfg);
  else fail(`${dir}: no tokenizer.json (or vocab.json + merges.txt) in this folder`);

  mergeConfigAddedTokens(base, cfg, io.join(dir, 'tokenizer_config.json'));
  const byContent = new Map(base.addedTokens.map((t) => [t.content, t]));
  const idOf = (content: string | undefined) => (content === undefined ? undefined : (byContent.get(content)?.id ?? base.vocab.get(content)));
  const gen = readJson(io.join(dir, 'generation_config.json'));
  const confFile = readJson(io.join(dir, 'config.json'));
  // Qwen3.5 (Qwen3_5ForConditionalGeneration) keeps the text model's ids under text_config
  const conf = confFile && isObj(confFile.text_config) ? { ...confFile.text_config, ...confFile } : confFile;
  // Generation stops on generation_config's eos_token_id (Qwen lists <|im_end|> and <|endoftext|>);
  // without it, on tokenizer_config's eos_token and config.json's eos_token_id.
  let eos = ids(gen?.eos_token_id);
  if (eos.length === 0) {
    const t = idOf(tokenContent(cfg?.eos_token));
    eos = [...(t === undefined ? [] : [t]), ...ids(conf?.eos_token_id)];
  }
  const first = (...vs: unknown[]) => {
    for (const v of vs) {
      const x = ids(v);
      if (x.length) return x[0];
    }
    return undefined;
  };
  return {
    ...base,
    eosTokenIds: eos,
    bosTokenId: first(idOf(tokenContent(cfg?.bos_token)), gen?.bos_token_id, conf?.bos_token_id),
    padTokenId: first(idOf(tokenContent(cfg?.pad_token)), gen?.pad_token_id, conf?.pad_token_id),
    chatTemplate: chatTemplateOf(dir, cfg),
    bosToken: tokenContent(cfg?.bos_token),
    eosToken: tokenContent(cfg?.eos_token),
    source: dir,
  };
}
