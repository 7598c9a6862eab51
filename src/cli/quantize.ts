// qwen-ts quantize <in: HF folder | file.gguf> <out.gguf> --type q8_0|q4_0|q4_k|f16|f32
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import type { GgufFile, GgufKV } from '../formats/gguf.js';
import { convertToGguf, OUT_TYPES, type OutType } from '../formats/to_gguf.js';
import { openModelFiles } from '../models/load.js';
import { ggufTokenizerMetadata } from '../tokenizer/gguf_vocab.js';

const HELP = `usage: qwen-ts quantize <model folder | file.gguf> <out.gguf> --type q8_0|q4_0|q4_k|f16|f32
Writes a GGUF file llama.cpp can load: matrices in the chosen type, norms and biases in F32,
the tokenizer (tokenizer.json in the folder) as tokenizer.ggml.* metadata.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { type: { type: 'string', default: 'q8_0' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (positionals.length !== 2) fail('expected an input model and an output file\n' + HELP);
  const [input, out] = positionals as [string, string];
  const type = values.type as OutType;
  if (!(type in OUT_TYPES)) fail(`--type '${values.type}' is not one of ${Object.keys(OUT_TYPES).join(', ')}`);
  if (path.resolve(input) === path.resolve(out)) fail('the output file must differ from the input');
  const { format, config, source } = openModelFiles(input);
  try {
    let tokenizerKv: GgufKV[];
    let modelKv: GgufKV[] | undefined;
    if (format === 'gguf') {
      const g = source as GgufFile;
      const kv = (keep: (k: string) => boolean) => [...g.metadata].filter(([k]) => keep(k)).map(([key, value]) => ({ key, value, type: g.metadataTypes.get(key)! }));
      tokenizerKv = kv((k) => k.startsWith('tokenizer.'));
      modelKv = kv((k) => !k.startsWith('tokenizer.') && !k.startsWith('general.'));
    } else if (fs.existsSync(path.join(input, 'tokenizer.json')) || fs.existsSync(path.join(input, 'vocab.json'))) {
      tokenizerKv = ggufTokenizerMetadata(input, config.vocab_size);
    } else {
      tokenizerKv = [];
      process.stderr.write(`note: ${input} has no tokenizer.json; the GGUF file will load in qwen.ts but not in llama.cpp\n`);
    }
    const name = path.basename(path.resolve(input)).replace(/\.gguf$/, '');
    convertToGguf(source, format, config, out, type, name, tokenizerKv, modelKv);
  } finally {
    source.close();
  }
  process.stderr.write(`wrote ${out} (${type}, ${(fs.statSync(out).size / 1e6).toFixed(1)} MB)\n`);
}
