// Entry point: a tokenizer from whatever the user points at (model folder, tokenizer.json, .gguf).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../errors.js';
import { ggufInFolder } from '../formats/gguf_split.js';
import { tokenizerFromGgufFile } from './gguf_vocab.js';
import { loadHfTokenizerSpec } from './hf_loader.js';
import { Tokenizer } from './tokenizer.js';

export function loadTokenizer(p: string): Tokenizer {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    fail(`${p}: no such file or folder (expected a model folder with tokenizer.json, or a .gguf file)`);
  }
  if (st.isDirectory()) {
    // a folder of GGUF shards (no tokenizer.json, no config.json): the tokenizer is in the GGUF
    const gguf = !fs.existsSync(path.join(p, 'tokenizer.json')) && !fs.existsSync(path.join(p, 'config.json')) ? ggufInFolder(p) : undefined;
    return gguf ? tokenizerFromGgufFile(gguf) : new Tokenizer(loadHfTokenizerSpec(p));
  }
  if (path.basename(p) === 'tokenizer.json' || path.basename(p) === 'vocab.json') return new Tokenizer(loadHfTokenizerSpec(path.dirname(p)));
  return tokenizerFromGgufFile(p);
}
