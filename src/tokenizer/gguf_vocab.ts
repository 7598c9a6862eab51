// The tokenizer in a GGUF file (tokenizer.ggml.* metadata), both ways:
//  - tokenizerFromGgufMetadata: build our Tokenizer from a file llama.cpp (or we) wrote;
//  - ggufTokenizerMetadata: the KV entries for an HF folder's tokenizer, written exactly as
//    llama.cpp's convert_hf_to_gguf.py does for Qwen2/Qwen3/Qwen3.5 (get_vocab_base + _set_vocab_gpt2 +
//    gguf-py SpecialVocab), so that llama.cpp loads our GGUF files with the right vocabulary.
import { nodePath } from '../node_builtin.js';
import { fail, quote } from '../errors.js';
import type { GgufValue } from '../formats/gguf.js';
import { openGgufModel } from '../formats/gguf_split.js';
import type { GgufKV } from '../formats/gguf_writer.js';
import type { AddedToken } from './added_tokens.js';
import { mergeParts } from './bpe.js';
import { loadHfTokenizerSpec, readJson } from './hf_loader.js';
import { QWEN2_PATTERN, QWEN35_PATTERN } from './pretokenize.js';
import { Tokenizer } from './tokenizer.js';

/** llama.cpp token types (gguf-py TokenType). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/**
 * tokenizer.ggml.pre values we implement, with their split regex (llama.cpp's llama-vocab.cpp:
 * LLAMA_VOCAB_PRE_TYPE_QWEN2 and _QWEN35, which spells the (?i:...) contractions as classes).
 */
const PRE_PATTERNS: Record<string, string> = { qwen2: QWEN2_PATTERN, qwen35: QWEN35_PATTERN };

/**
 * Texts llama.cpp treats as end-of-generation whatever the eos id says (llama-vocab.cpp), so a
 * Qwen GGUF stops on <|endoftext|> as well as on its eos <|im_end|>.
 */
const EOG_TEXTS = new Set([
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<|return|>',
  '<|call|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '<|eom_id|>',
  '<EOT>',
  '_<EOT>',
  '<|end_of_text|>',
  '<end_of_utterance>',
]);

export function tokenizerFromGgufFile(file: string): Tokenizer {
  const g = openGgufModel(file); // a split set's metadata is in its first shard
  try {
    return tokenizerFromGgufMetadata(g.metadata, file);
  } finally {
    g.close();
  }
}

export function tokenizerFromGgufMetadata(md: ReadonlyMap<string, GgufValue>, source = 'GGUF file'): Tokenizer {
  const get = (k: string) => md.get(k);
  const model = get('tokenizer.ggml.model');
  if (model === undefined) fail(`${source}: has no tokenizer (no tokenizer.ggml.model metadata)`);
  if (model !== 'gpt2') fail(`${source}: tokenizer.ggml.model is ${JSON.stringify(model)}; only byte-level BPE ("gpt2") is supported`);
  const pre = get('tokenizer.ggml.pre') ?? 'default';
  const pattern = PRE_PATTERNS[String(pre)];
  if (!pattern) fail(`${source}: tokenizer.ggml.pre ${JSON.stringify(pre)} is not supported (supported: ${Object.keys(PRE_PATTERNS).join(', ')})`);
  const tokens = get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) fail(`${source}: tokenizer.ggml.tokens must be an array of strings`);
  const types = get('tokenizer.ggml.token_type') ?? [];
  if (!Array.isArray(types) || (types.length !== 0 && types.length !== tokens.length))
    fail(`${source}: tokenizer.ggml.token_type must be an array as long as tokenizer.ggml.tokens (${tokens.length})`);
  const rawMerges = get('tokenizer.ggml.merges');
  if (!Array.isArray(rawMerges) || rawMerges.some((m) => typeof m !== 'string')) fail(`${source}: tokenizer.ggml.merges must be an array of strings`);

  const vocab = new Map<string, number>();
  const addedTokens: AddedToken[] = [];
  const unusedIds = new Map<number, string>();
  for (let id = 0; id < tokens.length; id++) {
    const text = tokens[id] as string;
    const type = types.length ? Number(types[id]) : TokenType.NORMAL;
    if (type === TokenType.NORMAL || type === TokenType.BYTE) vocab.set(text, id);
    else if (type === TokenType.CONTROL) addedTokens.push({ id, content: text, special: true });
    else if (type === TokenType.USER_DEFINED) addedTokens.push({ id, content: text, special: false });
    else unusedIds.set(id, text); // UNUSED / UNKNOWN: in the model, never in text
  }
  const merges = rawMerges as string[]; // "a b", checked when the BPE model is built
  const idKey = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n >= tokens.length) fail(`${source}: ${k} = ${quote(v)} is not a token id (the vocabulary has ${tokens.length})`);
    return n;
  };
  const eos: number[] = [];
  for (const k of ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id']) {
    const id = idKey(k);
    if (id !== undefined) eos.push(id);
  }
  for (const t of addedTokens) if (EOG_TEXTS.has(t.content)) eos.push(t.id);
  const tmpl = get('tokenizer.chat_template');
  const bos = idKey('tokenizer.ggml.bos_token_id'),
    eosId = idKey('tokenizer.ggml.eos_token_id');
  return new Tokenizer({
    vocab,
    merges,
    addedTokens,
    pattern,
    nfc: true,
    unusedIds,
    eosTokenIds: eos,
    bosTokenId: bos,
    padTokenId: idKey('tokenizer.ggml.padding_token_id'),
    chatTemplate: typeof tmpl === 'string' ? tmpl : undefined,
    // llama.cpp hands templates the texts of the bos/eos ids
    bosToken: bos === undefined ? undefined : (tokens[bos] as string),
    eosToken: eosId === undefined ? undefined : (tokens[eosId] as string),
    source,
  });
}

/** convert_hf_to_gguf.py's does_token_look_special: added tokens it makes CONTROL though not special. */
function looksSpecial(t: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t) || (t.startsWith('<|') && t.endsWith('|>')) || (t.startsWith('<｜') && t.endsWith('｜>')) || (t.startsWith('<unused') && t.endsWith('>'))
  );
}

/**
 * GGUF tokenizer metadata for an HF folder, as convert_hf_to_gguf.py writes it for Qwen:
 * tokens padded to the model's vocab_size with "[PAD{i}]" (UNUSED), added tokens CONTROL when
 * special or special-looking and USER_DEFINED otherwise, merges as "a b", special ids from
 * tokenizer_config.json then config.json (SpecialVocab's order), add_bos_token, chat template.
 * @param vocabSize rows of the model's embedding (config.json vocab_size when omitted)
 */
export function ggufTokenizerMetadata(dir: string, vocabSize?: number): GgufKV[] {
  const spec = loadHfTokenizerSpec(dir);
  // convert_hf_to_gguf.py recognises the pre-tokenizer by hashing its output; we compare the regex
  const pre = Object.keys(PRE_PATTERNS).find((k) => PRE_PATTERNS[k] === spec.pattern);
  if (pre === undefined || !spec.nfc) fail(`${dir}: only Qwen's pre-tokenizers (GGUF "qwen2", "qwen35") can be written to GGUF`);
  const conf = readJson(nodePath().join(dir, 'config.json'));
  const cfg = readJson(nodePath().join(dir, 'tokenizer_config.json'));
  const added = new Map(spec.addedTokens.map((t) => [t.id, t]));
  let maxId = -1;
  for (const id of spec.vocab.values()) maxId = Math.max(maxId, id);
  for (const id of added.keys()) maxId = Math.max(maxId, id);
  const n = vocabSize ?? (Number.isInteger(conf?.vocab_size) ? (conf!.vocab_size as number) : maxId + 1);
  if (n <= maxId) fail(`${dir}: vocab_size ${n} is smaller than the tokenizer (token id ${maxId})`);

  const byId: (string | undefined)[] = new Array(n);
  for (const [t, id] of spec.vocab) byId[id] = t;
  const tokens: string[] = [],
    types: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = added.get(i);
    if (a) {
      // (convert_hf_to_gguf also round-trips non-normalized added tokens through encode/decode,
      // which leaves every Qwen token unchanged, so that step is not repeated here)
      const control = a.special || looksSpecial(a.content);
      tokens.push(control ? a.content : a.content.replace(/\u2581/g, ' ')); // its "pre-normalize user-defined spaces"
      types.push(control ? TokenType.CONTROL : TokenType.USER_DEFINED);
    } else if (byId[i] !== undefined) {
      tokens.push(byId[i]!);
      types.push(TokenType.NORMAL);
    } else {
      tokens.push(`[PAD${i}]`);
      types.push(TokenType.UNUSED);
    }
  }
  // gguf-py writes a space inside a merge part as U+0120 so that "a b" stays splittable
  const enc = (s: string) => s.replace(/ /g, '\u0120');
  const merges = spec.merges.map((m) => {
    if (typeof m === 'string') return m;
    const [a, b] = mergeParts(m)!;
    return `${enc(a)} ${enc(b)}`;
  });

  // SpecialVocab: ids of tokenizer_config's <typ>_token texts (looked up among tokenizer.json's
  // added tokens), then config.json's <typ>_token_id for types still unset.
  const special: [string, number][] = [];
  const types7 = ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask'];
  const set = (typ: string, id: unknown) => {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= n || special.some(([t]) => t === typ)) return;
    special.push([typ, id as number]);
  };
  for (const typ of types7) {
    const e = cfg?.[`${typ}_token`];
    const content = typeof e === 'string' ? e : typeof e === 'object' && e && typeof (e as { content?: unknown }).content === 'string' ? (e as { content: string }).content : undefined;
    if (content !== undefined) set(typ, spec.addedTokens.find((t) => t.content === content)?.id);
  }
  for (const typ of types7) set(typ, conf?.[`${typ}_token_id`]);
  const keyOf: Record<string, string> = { pad: 'padding' };

  const kv: GgufKV[] = [
    { key: 'tokenizer.ggml.model', type: 'str', value: 'gpt2' },
    { key: 'tokenizer.ggml.pre', type: 'str', value: pre },
    { key: 'tokenizer.ggml.tokens', type: { array: 'str' }, value: tokens },
    { key: 'tokenizer.ggml.token_type', type: { array: 'i32' }, value: types },
    { key: 'tokenizer.ggml.merges', type: { array: 'str' }, value: merges },
  ];
  for (const [typ, id] of special) kv.push({ key: `tokenizer.ggml.${keyOf[typ] ?? typ}_token_id`, type: 'u32', value: id });
  for (const typ of types7) {
    const v = cfg?.[`add_${typ}_token`];
    if (typeof v === 'boolean') kv.push({ key: `tokenizer.ggml.add_${typ}_token`, type: 'bool', value: v });
  }
  if (spec.chatTemplate !== undefined) kv.push({ key: 'tokenizer.chat_template', type: 'str', value: spec.chatTemplate });
  return kv;
}
