// One-off: write tokenizer.json / tokenizer_config.json for a tiny fixture model from the vocabulary
// that llama.cpp's converter put in its GGUF file (tokens, token types, merges), so that the HF
// folder -> GGUF conversion can be checked against llama.cpp's own output.
// usage: node scripts/make-tiny-tokenizer.mjs <model-f32.gguf> <out dir>   (after npm run build)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../dist/src/formats/gguf.js';

const [gguf, out] = process.argv.slice(2);
const g = openGguf(gguf);
const tokens = g.metadata.get('tokenizer.ggml.tokens');
const types = g.metadata.get('tokenizer.ggml.token_type');
const merges = g.metadata.get('tokenizer.ggml.merges');
const vocab = {};
const added = [];
tokens.forEach((t, id) => {
  if (types[id] === 1) vocab[t] = id;
  else if (types[id] === 3) added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  // type 5 ([PADn]) rows are padding the converter adds itself
});
const regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const tok = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: added,
  normalizer: { type: 'NFC' },
  pre_tokenizer: {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  },
  post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
  decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
};
fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(tok, null, 2));
const eos = tokens[g.metadata.get('tokenizer.ggml.eos_token_id')];
fs.writeFileSync(
  path.join(out, 'tokenizer_config.json'),
  JSON.stringify(
    {
      add_bos_token: false,
      add_prefix_space: false,
      bos_token: null,
      eos_token: eos,
      pad_token: eos,
      model_max_length: 256,
      tokenizer_class: 'Qwen2Tokenizer',
      errors: 'replace',
      clean_up_tokenization_spaces: false,
      split_special_tokens: false,
      added_tokens_decoder: Object.fromEntries(added.map((a) => [String(a.id), { ...a, id: undefined }])),
    },
    null,
    2,
  ),
);
