// GGUF tokenizer metadata, both ways: HF folder -> ggufTokenizerMetadata -> GGUF file (the
// project's writer) -> tokenizer -> the same ids on every vector; and the metadata itself against
// a GGUF that llama.cpp's gguf-py wrote for the same Qwen3 vocabulary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../../src/formats/gguf.js';
import { writeGguf } from '../../src/formats/gguf_writer.js';
import { ggufTokenizerMetadata, loadTokenizer, TokenType, type Tokenizer } from '../../src/tokenizer/index.js';
import { FIX, fixtureTokenizer, modelDirWith, readFixtureJson, tempDir, vocabVectors, type Family } from './helpers.js';

interface Reference {
  n_tokens: number;
  n_merges: number;
  tokens_sha256: string;
  merges_sha256: string;
  token_type_runs: [number, number, number][];
  eos_token_id: number;
  bos_token_id: number;
  padding_token_id: number;
  add_bos_token: boolean;
  model: string;
  pre: string;
  value_types: Record<string, number>;
}
const ref = readFixtureJson<Reference>('gguf-reference/qwen3-tiny-realvocab.tokenizer-metadata.json');
const tinyConfig = fs.readFileSync(path.join(FIX, 'gguf-reference', 'qwen3-tiny-realvocab.config.json'), 'utf8');

/** Write the tokenizer of an HF folder into a GGUF file, as the quantize command does. */
function toGguf(dir: string, vocabSize?: number): string {
  const file = path.join(tempDir('gguf'), 'model.gguf');
  writeGguf(file, { metadata: [{ key: 'general.architecture', type: 'str', value: 'qwen3' }, ...ggufTokenizerMetadata(dir, vocabSize)], tensors: [] });
  return file;
}

const sha = (xs: string[]) =>
  createHash('sha256')
    .update(xs.map((x) => x + '\n').join(''))
    .digest('hex');

test("Qwen3 metadata matches the GGUF llama.cpp's gguf-py wrote for the same vocabulary", () => {
  const dir = modelDirWith('qwen3', ['tokenizer.json', 'tokenizer_config.json'], { 'config.json': tinyConfig });
  const g = openGguf(toGguf(dir));
  try {
    const md = g.metadata,
      types = g.metadataTypes;
    assert.equal(md.get('tokenizer.ggml.model'), ref.model);
    assert.equal(md.get('tokenizer.ggml.pre'), ref.pre);
    const tokens = md.get('tokenizer.ggml.tokens') as string[],
      merges = md.get('tokenizer.ggml.merges') as string[];
    assert.equal(tokens.length, ref.n_tokens);
    assert.equal(merges.length, ref.n_merges);
    assert.equal(sha(tokens), ref.tokens_sha256, 'token strings, [PAD{i}] rows included');
    assert.equal(sha(merges), ref.merges_sha256, 'merges as "a b"');
    // Types: the same runs, except that convert_hf_to_gguf.py's does_token_look_special makes the
    // <|fim_*|>, <|repo_name|>, <|file_sep|> tokens (special: false, spelled <|...|>) CONTROL;
    // the reference file was written without that rule.
    const tt = md.get('tokenizer.ggml.token_type') as number[];
    for (const [type, first, count] of ref.token_type_runs) {
      for (let id = first; id < first + count; id++) {
        const expected = type === TokenType.USER_DEFINED && /^<\|.*\|>$/.test(tokens[id]!) ? TokenType.CONTROL : type;
        assert.equal(tt[id], expected, `type of ${id} ${tokens[id]}`);
      }
    }
    assert.equal(tt[151659], TokenType.CONTROL, '<|fim_prefix|>');
    assert.equal(tt[151667], TokenType.USER_DEFINED, '<think>');
    assert.equal(md.get('tokenizer.ggml.eos_token_id'), ref.eos_token_id);
    assert.equal(md.get('tokenizer.ggml.bos_token_id'), ref.bos_token_id);
    assert.equal(md.get('tokenizer.ggml.padding_token_id'), ref.padding_token_id);
    assert.equal(md.get('tokenizer.ggml.add_bos_token'), ref.add_bos_token);
    for (const [k, t] of Object.entries(ref.value_types)) {
      const ours = types.get(k)!;
      const id = typeof ours === 'string' ? { str: 8, u32: 4, bool: 7 }[ours as 'str'] : 9;
      assert.equal(id, t, `GGUF value type of ${k}`);
    }
    assert.deepEqual(types.get('tokenizer.ggml.token_type'), { array: 'i32' });
    assert.equal(md.get('tokenizer.chat_template'), fixtureTokenizer('qwen3').chatTemplate);
  } finally {
    g.close();
  }
});

function checkVectors(tok: Tokenizer, label: string): void {
  for (const v of vocabVectors()) {
    assert.deepEqual(tok.encode(v.text), v.ids, `${label}: ${v.source}`);
    assert.equal(tok.decode(v.ids), v.text, `${label}: decode ${v.source}`);
  }
}

for (const family of ['qwen3', 'qwen2.5'] as Family[]) {
  test(`${family}: HF folder -> GGUF -> tokenizer gives the same ids on every vector`, () => {
    // Qwen2.5 with an explicit vocab_size as for the 7B models (152064), Qwen3 from config.json
    const dir =
      family === 'qwen3' ? modelDirWith(family, ['tokenizer.json', 'tokenizer_config.json'], { 'config.json': tinyConfig }) : modelDirWith(family, ['tokenizer.json', 'tokenizer_config.json']);
    const size = family === 'qwen3' ? 151936 : 152064;
    const tok = loadTokenizer(toGguf(dir, family === 'qwen3' ? undefined : size));
    checkVectors(tok, `${family} GGUF`);
    const hf = fixtureTokenizer(family);
    assert.equal(tok.vocabSize, size);
    // padding rows exist in the model but are never text
    assert.equal(tok.idToToken(size - 1), `[PAD${size - 1}]`);
    assert.equal(tok.decode([size - 1]), '');
    assert.deepEqual(tok.encode(`[PAD${size - 1}]`), hf.encode(`[PAD${size - 1}]`));
    // llama.cpp stops on the eos (<|im_end|>) and on <|endoftext|>
    assert.deepEqual([...tok.eosTokenIds].sort(), [151643, 151645]);
    assert.equal(tok.bosTokenId, family === 'qwen3' ? 151643 : undefined);
    assert.equal(tok.padTokenId, 151643);
    assert.equal(tok.chatTemplate, hf.chatTemplate);
    const chat = '<|im_start|>user\nHi <tool_call> <think><|im_end|>\n';
    assert.deepEqual(tok.encode(chat), hf.encode(chat));
  });
}

test('GGUF tokenizer on the golden chat renders gives the golden ids', () => {
  const dir = modelDirWith('qwen3', ['tokenizer.json', 'tokenizer_config.json'], { 'config.json': tinyConfig });
  const tok = loadTokenizer(toGguf(dir));
  const golden = readFixtureJson<{ cases: { name: string; expected: Record<string, string | object> }[] }>('chat-template-tests/golden-renders-jinja2.json');
  const ids = readFixtureJson<{ items: { case: string; template: string; ids: number[] }[] }>('chat-template-tests/golden-renders-token-ids.json');
  for (const item of ids.items) {
    const text = golden.cases.find((c) => c.name === item.case)!.expected[item.template] as string;
    assert.deepEqual(tok.encode(text), item.ids, `${item.case} / ${item.template}`);
  }
});

test('vocab_size smaller than the tokenizer is refused', () => {
  const dir = modelDirWith('qwen2.5', ['tokenizer.json', 'tokenizer_config.json']);
  assert.throws(() => ggufTokenizerMetadata(dir, 1000), /vocab_size 1000 is smaller than the tokenizer/);
});
