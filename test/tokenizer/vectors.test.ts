// Encoding against the independent references: llama.cpp's Qwen2 vocab test vectors (2 versions)
// and transformers' Qwen2 integration strings, with the Qwen2.5 and Qwen3 tokenizers, from
// tokenizer.json and from the older vocab.json + merges.txt layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { fixtureModelDir, fixtureTokenizer, modelDirWith, vocabVectors, type Family } from './helpers.js';

const vectors = vocabVectors();

function checkAll(tok: Tokenizer, label: string): void {
  for (const v of vectors) {
    assert.deepEqual(tok.encode(v.text), v.ids, `${label}: ${v.source} ${JSON.stringify(v.text).slice(0, 80)}`);
    assert.equal(tok.decode(v.ids), v.text, `${label}: decode ${v.source}`);
  }
}

test('the fixture tokenizer files are the published ones (sha256 of the unpacked files)', () => {
  const published: [Family, string, string][] = [
    ['qwen3', 'tokenizer.json', 'aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4'],
    ['qwen2.5', 'tokenizer.json', 'c0382117ea329cdf097041132f6d735924b697924d6f6fc3945713e96ce87539'],
    ['qwen2.5', 'vocab.json', 'ca10d7e9fb3ed18575dd1e277a2579c16d108e32f27439684afa0e10b1440910'],
    ['qwen2.5', 'merges.txt', '599bab54075088774b1733fde865d5bd747cbcc7a547c5bc12610e874e26f5e3'],
  ];
  for (const [family, file, sha] of published) {
    assert.equal(
      createHash('sha256')
        .update(fs.readFileSync(path.join(fixtureModelDir(family), file)))
        .digest('hex'),
      sha,
      `${family}/${file}`,
    );
  }
});

test('the vectors are all there (46 + 46 llama.cpp, 3 transformers)', () => {
  assert.equal(vectors.length, 95);
  assert.ok(
    vectors.some((v) => v.text === '' && v.ids.length === 0),
    'the empty-string case',
  );
});

for (const family of ['qwen2.5', 'qwen3'] as Family[]) {
  test(`${family} tokenizer.json encodes and decodes every vector`, () => {
    checkAll(fixtureTokenizer(family), family);
  });
}

test('qwen2.5 from vocab.json + merges.txt (older layout) encodes every vector', () => {
  const dir = modelDirWith('qwen2.5', ['vocab.json', 'merges.txt', 'tokenizer_config.json']);
  const tok = loadTokenizer(dir);
  checkAll(tok, 'vocab.json+merges.txt');
  // added tokens come from tokenizer_config.json's added_tokens_decoder
  assert.equal(tok.vocabSize, 151665);
  assert.deepEqual(tok.encode('<|im_start|>user\nhi<|im_end|>'), [151644, 872, 198, 6023, 151645]);
  assert.ok(tok.specialIds.has(151645) && !tok.specialIds.has(151657), '<|im_end|> special, <tool_call> not');
});

test('vocabulary facts: sizes, added tokens, no BOS, stop tokens', () => {
  const q25 = fixtureTokenizer('qwen2.5'),
    q3 = fixtureTokenizer('qwen3');
  assert.equal(q25.vocabSize, 151665);
  assert.equal(q3.vocabSize, 151669);
  assert.equal(q3.bpe.mergeCount, 151387);
  assert.equal(q3.tokenToId('<think>'), 151667);
  assert.equal(q25.tokenToId('<think>'), undefined);
  assert.equal(q3.idToToken(151668), '</think>');
  assert.equal(q3.idToToken(9707), 'Hello');
  assert.equal(q3.idToToken(151669), undefined);
  assert.equal(q3.bosToken, undefined, 'Qwen has no BOS');
  assert.equal(q3.eosToken, '<|im_end|>');
  // no generation_config.json in the fixture: tokenizer_config's eos_token
  assert.deepEqual(q3.eosTokenIds, [151645]);
  assert.deepEqual(q3.encode('Hello'), [9707], 'no BOS added');
});

test('added tokens are matched in text and never produced by merges', () => {
  const q3 = fixtureTokenizer('qwen3'),
    q25 = fixtureTokenizer('qwen2.5');
  assert.deepEqual(q3.encode('<think>\nok</think>'), [151667, 198, 562, 151668]);
  // Qwen2.5 has no <think> token: the same text is ordinary BPE
  const ids = q25.encode('<think>');
  assert.ok(ids.length > 1 && ids.every((i) => i < 151643), String(ids));
  assert.equal(q25.decode(ids), '<think>');
  // leftmost-longest: adjacent tokens and a token glued to text
  assert.deepEqual(q3.encode('<|im_end|><|im_start|>x<|endoftext|>'), [151645, 151644, 87, 151643]);
});

test('parseSpecial: false reads special tokens as text but still matches non-special added tokens', () => {
  const q3 = fixtureTokenizer('qwen3');
  const text = '<|im_start|>user\n<think>hi</think><|im_end|>';
  const ids = q3.encode(text, { parseSpecial: false });
  assert.ok(!ids.includes(151644) && !ids.includes(151645), 'no special ids');
  assert.ok(ids.includes(151667) && ids.includes(151668), '<think> still matched');
  assert.equal(q3.decode(ids), text);
  // as plain text "<|im_end|>" is the same BPE as in a tokenizer without that added token
  const q25 = fixtureTokenizer('qwen2.5');
  assert.deepEqual(q3.encode('a <|im_end|> b', { parseSpecial: false }), q25.encode('a <|im_end|> b', { parseSpecial: false }));
});

test('NFC: decomposed input encodes like its composed form', () => {
  const q3 = fixtureTokenizer('qwen3');
  const decomposed = 'Cafe\u0301 U\u0308ber',
    composed = 'Café Über';
  assert.deepEqual(q3.encode(decomposed), q3.encode(composed));
  assert.equal(q3.decode(q3.encode(decomposed)), composed);
});

test('stop tokens: generation_config.json eos list, else tokenizer_config + config.json', () => {
  const keep = ['tokenizer.json', 'tokenizer_config.json'];
  // Qwen's generation_config.json lists both <|im_end|> and <|endoftext|>
  const gen = loadTokenizer(modelDirWith('qwen3', keep, { 'generation_config.json': '{"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643}' }));
  assert.deepEqual(gen.eosTokenIds, [151645, 151643]);
  assert.equal(gen.bosTokenId, 151643);
  const conf = loadTokenizer(modelDirWith('qwen3', keep, { 'config.json': '{"eos_token_id": 151643}' }));
  assert.deepEqual(conf.eosTokenIds, [151645, 151643]);
  const single = loadTokenizer(modelDirWith('qwen3', keep, { 'generation_config.json': '{"eos_token_id": 151643}' }));
  assert.deepEqual(single.eosTokenIds, [151643]);
});
