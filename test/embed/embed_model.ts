// Embedding-model copies of the tiny real-vocabulary qwen3 fixture: its GGUF with llama.cpp's
// pooling metadata added ({arch}.pooling_type; add_eos_token with <|endoftext|> as EOS, as the
// Qwen3-Embedding GGUF files have), built in a temp folder. scripts/embed-reference.mjs computed
// llama.cpp's embeddings on exactly these files (test/fixtures/embed/reference.json).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GgufKV } from '../../src/formats/gguf.js';
import { fixtureDir } from '../helpers.js';
import { ggufVariant } from '../models/variants.js';

export const ENDOFTEXT = 151643;
export const POOLING_TYPES = { mean: 1, cls: 2, last: 3 } as const;

/** The fixture GGUF (no pooling rule: a plain causal LM). */
export const plainGguf = () => path.join(fixtureDir('models/qwen3-tiny-realvocab'), 'model-f32.gguf');

/** The fixture GGUF with pooling_type `type` (and add_eos_token), built once per process user. */
export function embeddingGguf(pooling: keyof typeof POOLING_TYPES): string {
  const dir = path.join(os.tmpdir(), `qwen-ts-fixtures-${process.getuid?.() ?? 0}`, 'embed');
  const dst = path.join(dir, `qwen3-tiny-${pooling}.gguf`);
  if (fs.existsSync(dst)) return dst;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${dst}.${process.pid}.tmp`;
  ggufVariant(plainGguf(), tmp, (m: GgufKV[]) => {
    const set = (kv: GgufKV) => {
      const i = m.findIndex((x) => x.key === kv.key);
      if (i >= 0) m[i] = kv;
      else m.push(kv);
    };
    set({ key: 'qwen3.pooling_type', type: 'u32', value: POOLING_TYPES[pooling] });
    set({ key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: true });
    set({ key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: ENDOFTEXT });
  });
  fs.renameSync(tmp, dst); // atomic: parallel test processes share the copy
  return dst;
}
