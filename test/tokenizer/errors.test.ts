// Bad tokenizer files are clear QwenErrors naming the file and the field, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QwenError } from '../../src/errors.js';
import { writeGguf } from '../../src/formats/gguf_writer.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { tempDir } from './helpers.js';

/** A tiny but valid byte-level BPE tokenizer.json (every byte a token, one merge). */
function tinyTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  // byte-characters: printable ASCII spell themselves; enough for the text used below
  for (let c = 0x21; c <= 0x7e; c++) vocab[String.fromCharCode(c)] = c - 0x21;
  vocab['\u0120'] = 94; // space
  vocab['ab'] = 95;
  return {
    version: '1.0',
    added_tokens: [{ id: 96, content: '<|end|>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false }],
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges: ['a b'] },
  };
}

function dirWith(tj: unknown, raw?: string): string {
  const d = tempDir('bad');
  fs.writeFileSync(path.join(d, 'tokenizer.json'), raw ?? JSON.stringify(tj));
  return d;
}

function expectError(dir: string, pattern: RegExp): void {
  assert.throws(
    () => loadTokenizer(dir),
    (e: unknown) => {
      assert.ok(e instanceof QwenError, `expected a QwenError, got ${String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('the tiny tokenizer used below is valid', () => {
  const tok = loadTokenizer(dirWith(tinyTokenizerJson()));
  assert.deepEqual(tok.encode('ab a<|end|>'), [95, 94, 0x61 - 0x21, 96]);
  assert.equal(tok.decode([95, 94, 96]), 'ab <|end|>');
  // added tokens with regex syntax characters in them, and lstrip/rstrip swallowing spaces
  const t = tinyTokenizerJson();
  (t.added_tokens as object[]).push({ id: 97, content: '[a-b.c*]/(x)?', special: false }, { id: 98, content: '<s>', special: true, lstrip: true, rstrip: true });
  const tok2 = loadTokenizer(dirWith(t));
  assert.deepEqual(tok2.encode('b[a-b.c*]/(x)?a'), [0x62 - 0x21, 97, 0x61 - 0x21]);
  assert.deepEqual(tok2.encode('a  <s>  b'), [0x61 - 0x21, 98, 0x62 - 0x21]);
});

test('malformed tokenizer.json files', () => {
  const mutate = (f: (t: Record<string, any>) => void) => {
    const t = tinyTokenizerJson();
    f(t);
    return dirWith(t);
  };
  expectError(dirWith(null, '{"model": {'), /tokenizer\.json: not valid JSON/);
  expectError(dirWith(null, '[1, 2]'), /tokenizer\.json: expected a tokenizer object/);
  expectError(
    mutate((t) => {
      delete t.model;
    }),
    /missing "model"/,
  );
  expectError(
    mutate((t) => {
      t.model.type = 'Unigram';
    }),
    /model type "Unigram" is not supported/,
  );
  expectError(
    mutate((t) => {
      t.model.byte_fallback = true;
    }),
    /byte_fallback/,
  );
  expectError(
    mutate((t) => {
      t.model.vocab = [1, 2];
    }),
    /"model\.vocab" must be an object/,
  );
  expectError(
    mutate((t) => {
      t.model.vocab.ab = 'x';
    }),
    /"ab" has id "x"/,
  );
  expectError(
    mutate((t) => {
      t.model.merges = 'a b';
    }),
    /"model\.merges" must be an array/,
  );
  expectError(
    mutate((t) => {
      t.model.merges = ['a b', 'ab zz'];
    }),
    /merge #1 'ab zz' uses a token that is not in the vocabulary/,
  );
  expectError(
    mutate((t) => {
      t.model.merges = ['b a'];
    }),
    /makes 'ba', which is not in the vocabulary/,
  );
  expectError(
    mutate((t) => {
      t.model.merges = ['abc'];
    }),
    /merge #0 "abc" is not two tokens/,
  );
  expectError(
    mutate((t) => {
      t.model.merges = [['a']];
    }),
    /merge #0/,
  );
  expectError(
    mutate((t) => {
      t.added_tokens = [{ id: 'x', content: 1 }];
    }),
    /added_tokens\[0\] must be an object with an integer "id"/,
  );
  expectError(
    mutate((t) => {
      t.normalizer = { type: 'NFKC' };
    }),
    /normalizer "NFKC" is not supported/,
  );
  expectError(
    mutate((t) => {
      t.pre_tokenizer = { type: 'Whitespace' };
    }),
    /pre_tokenizer is not supported/,
  );
  expectError(
    mutate((t) => {
      t.pre_tokenizer.pretokenizers[0].pattern.Regex = '(?<';
    }),
    /regex cannot be compiled/,
  );
  expectError(
    mutate((t) => {
      t.decoder = { type: 'WordPiece' };
    }),
    /decoder "WordPiece" is not supported/,
  );
});

test('tokenizer_config.json added_tokens_decoder: tokens it alone lists are added; contradictions are named', () => {
  const withConfig = (cfg: unknown) => {
    const d = dirWith(tinyTokenizerJson());
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(cfg));
    return d;
  };
  // as transformers does for Qwen3.5's audio tokens: a token only the config lists gets its id
  const tok = loadTokenizer(withConfig({ added_tokens_decoder: { 96: { content: '<|end|>', special: false }, 97: { content: '<|extra|>', special: true } } }));
  assert.deepEqual(tok.encode('ab<|extra|><|end|>'), [95, 97, 96]);
  assert.ok(tok.isSpecial(97) && !tok.isSpecial(96), "the config's special flag wins");
  const cases: [unknown, RegExp][] = [
    [{ 96: { content: '<|other|>' } }, /tokenizer_config\.json: added_tokens_decoder\["96"\] is "<\|other\|>" but tokenizer\.json's added token 96 is "<\|end\|>"/],
    [{ 95: { content: '<|new|>' } }, /tokenizer_config\.json: added_tokens_decoder\["95"\] "<\|new\|>" collides with "ab" already in tokenizer\.json/],
    [{ 100: { content: '<|end|>' } }, /added_tokens_decoder\["100"\] "<\|end\|>" collides with "<\|end\|>"/],
    [{ x: { content: 'y' } }, /tokenizer_config\.json: added_tokens_decoder\["x"\] must be an object with an integer "id"/],
    [[1, 2], /tokenizer_config\.json: "added_tokens_decoder" must be an object/],
  ];
  for (const [dec, re] of cases) expectError(withConfig({ added_tokens_decoder: dec }), re);
  // the two-file layout: the config's pretokenize_regex (Qwen3.5) must be a string
  const slow = tempDir('slow');
  fs.writeFileSync(path.join(slow, 'vocab.json'), JSON.stringify((tinyTokenizerJson().model as { vocab: object }).vocab));
  fs.writeFileSync(path.join(slow, 'merges.txt'), 'a b\n');
  fs.writeFileSync(path.join(slow, 'tokenizer_config.json'), '{"pretokenize_regex": 5}');
  expectError(slow, /tokenizer_config\.json: "pretokenize_regex" must be a string/);
  fs.writeFileSync(path.join(slow, 'tokenizer_config.json'), '{"pretokenize_regex": "[a-z]+|\\\\s+"}');
  assert.deepEqual(loadTokenizer(slow).encode('ab ab'), [95, 94, 95]);
});

test('missing files and folders', () => {
  expectError(path.join(tempDir('none'), 'nope'), /no such file or folder/);
  expectError(tempDir('empty'), /no tokenizer\.json \(or vocab\.json \+ merges\.txt\)/);
  const d = tempDir('slow');
  fs.writeFileSync(path.join(d, 'vocab.json'), '{"a": 0}');
  expectError(d, /has vocab\.json but no merges\.txt/);
  const bad = dirWith(tinyTokenizerJson());
  fs.writeFileSync(path.join(bad, 'tokenizer_config.json'), '{"chat_template": 5}');
  expectError(bad, /"chat_template" must be a string/);
  fs.writeFileSync(path.join(bad, 'tokenizer_config.json'), 'nope');
  expectError(bad, /tokenizer_config\.json: not valid JSON/);
});

test('GGUF files without a usable tokenizer', () => {
  const d = tempDir('gguf');
  const file = path.join(d, 'x.gguf');
  writeGguf(file, { metadata: [{ key: 'general.architecture', type: 'str', value: 'qwen2' }], tensors: [] });
  expectError(file, /has no tokenizer/);
  const base = [
    { key: 'tokenizer.ggml.model', type: 'str' as const, value: 'gpt2' },
    { key: 'tokenizer.ggml.tokens', type: { array: 'str' as const }, value: ['a', 'b', 'ab'] },
    { key: 'tokenizer.ggml.merges', type: { array: 'str' as const }, value: ['a b'] },
  ];
  writeGguf(file, { metadata: [...base, { key: 'tokenizer.ggml.pre', type: 'str', value: 'llama-bpe' }], tensors: [] });
  expectError(file, /tokenizer\.ggml\.pre "llama-bpe" is not supported/);
  writeGguf(file, { metadata: [{ key: 'tokenizer.ggml.model', type: 'str', value: 'llama' }], tensors: [] });
  expectError(file, /only byte-level BPE/);
  writeGguf(file, { metadata: [...base, { key: 'tokenizer.ggml.pre', type: 'str', value: 'qwen2' }, { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 7 }], tensors: [] });
  expectError(file, /eos_token_id = 7 is not a token id/);
  writeGguf(file, { metadata: [...base, { key: 'tokenizer.ggml.pre', type: 'str', value: 'qwen2' }, { key: 'tokenizer.ggml.token_type', type: { array: 'i32' }, value: [1] }], tensors: [] });
  expectError(file, /token_type must be an array as long as/);
  fs.writeFileSync(file, 'not a gguf file at all, just text');
  expectError(file, /not a GGUF file/);
});
