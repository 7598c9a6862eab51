// llama.cpp's own tokenization of Qwen3.5 text (node-llama-cpp 3.22.1 on the GGUF of
// test/fixtures/models/qwen35-tiny-realvocab, whose tokenizer.ggml.pre is "qwen35"): our GGUF
// vocabulary path reproduces it, and our HF -> GGUF metadata matches that file's vocabulary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../../src/formats/gguf.js';
import { ggufTokenizerMetadata, loadTokenizer } from '../../src/tokenizer/index.js';
import { QWEN35_PATTERN } from '../../src/tokenizer/pretokenize.js';
import { fixtureDir, FIXTURES } from '../helpers.js';
import { fixtureTokenizer, modelDirWith } from './helpers.js';

interface LlamaVec {
  text: string;
  ids: number[];
  special_tokens_parsed: boolean;
  nfc_changes_text: boolean;
  source: string;
}
const vectors = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'models', 'qwen35-tiny-realvocab', 'llama-tokenizer-vectors.json'), 'utf8')) as LlamaVec[];
const gguf = () => path.join(fixtureDir('models/qwen35-tiny-realvocab'), 'model-f32.gguf');

test("llama.cpp's qwen35 vectors: our tokenizer from that GGUF gives the same ids and decodes back", () => {
  const tok = loadTokenizer(gguf());
  assert.equal(tok.spec.pattern, QWEN35_PATTERN);
  assert.equal(vectors.length, 70);
  let nfc = 0;
  for (const v of vectors) {
    const at = `${v.source} ${JSON.stringify(v.text).slice(0, 60)}`;
    assert.equal(tok.decode(v.ids), v.text, `decode ${at}`);
    if (v.nfc_changes_text) {
      // llama.cpp skips tokenizer.json's NFC normaliser; we apply it, as Hugging Face does
      nfc++;
      assert.notDeepEqual(tok.encode(v.text, { parseSpecial: v.special_tokens_parsed }), v.ids, at);
      assert.deepEqual(tok.encode(v.text, { parseSpecial: v.special_tokens_parsed }), tok.encode(v.text.normalize('NFC'), { parseSpecial: v.special_tokens_parsed }), at);
      assert.deepEqual(tok.encode(v.text.normalize('NFC')), fixtureTokenizer('qwen3.5').encode(v.text), at);
      continue;
    }
    assert.deepEqual(tok.encode(v.text, { parseSpecial: v.special_tokens_parsed }), v.ids, at);
    // the HF tokenizer.json path agrees (with special tokens parsed the same way)
    assert.deepEqual(fixtureTokenizer('qwen3.5').encode(v.text, { parseSpecial: v.special_tokens_parsed }), v.ids, `HF ${at}`);
  }
  assert.equal(nfc, 2);
  assert.ok(
    vectors.some((v) => !v.special_tokens_parsed && v.text.includes('<|im_start|>')),
    'a ChatML case with parse_special false',
  );
});

test('our HF -> GGUF tokenizer metadata has the vocabulary of that GGUF (tokens, types, merges)', () => {
  const ours = new Map(ggufTokenizerMetadata(modelDirWith('qwen3.5', ['tokenizer.json', 'tokenizer_config.json']), 248320).map((kv) => [kv.key, kv.value]));
  const g = openGguf(gguf());
  try {
    for (const k of [
      'tokenizer.ggml.model',
      'tokenizer.ggml.pre',
      'tokenizer.ggml.tokens',
      'tokenizer.ggml.token_type',
      'tokenizer.ggml.merges',
      'tokenizer.ggml.eos_token_id',
      'tokenizer.ggml.padding_token_id',
      'tokenizer.chat_template',
    ]) {
      const theirs = g.metadata.get(k);
      const mine = ours.get(k);
      if (Array.isArray(theirs)) {
        assert.ok(Array.isArray(mine) && mine.length === theirs.length, `${k} length`);
        for (let i = 0; i < theirs.length; i++)
          if (mine[i] !== Number(theirs[i]) && mine[i] !== theirs[i]) assert.fail(`${k}[${i}]: ours ${JSON.stringify(mine[i])}, GGUF ${JSON.stringify(theirs[i])}`);
      } else {
        assert.equal(String(mine), String(theirs), k);
      }
    }
  } finally {
    g.close();
  }
});
