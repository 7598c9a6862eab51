// qwen-ts quantize <in: HF folder | file.gguf> <out.gguf> --type TYPE: llama.cpp's file types, each
// tensor in the type llama-quantize picks for it (src/formats/quant_mix.ts)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import type { GgufFile, GgufKV } from '../formats/gguf.js';
import { convertToGguf, OUT_TYPES, type OutType } from '../formats/to_gguf.js';
import { openModelFiles } from '../models/load.js';
import type { QwenConfig } from '../models/config.js';
import type { TensorSource } from '../formats/file.js';
import { ggufTokenizerMetadata } from '../tokenizer/gguf_vocab.js';

const HELP = `usage: qwen-ts quantize <model folder | file.gguf> <out.gguf> --type TYPE [--pure] [--dry-run]
TYPE: ${Object.keys(OUT_TYPES).join(', ')}
Writes a GGUF file llama.cpp can load, each tensor in the type llama-quantize (no importance matrix)
chooses for that file type (q4_k_m: most matrices Q4_K, some attn_v / ffn_down Q6_K, the output
Q6_K; rows that do not fill 256-value blocks fall back to Q5_0 / Q5_1 / Q8_0 / IQ4_NL; q4_k: every
matrix Q4_K, as llama-quantize --pure), norms and biases as stored (F32 from a folder), the tokenizer
(tokenizer.json in the folder) as tokenizer.ggml.* metadata.
--pure: every matrix in the type itself, but for the row fallbacks (llama-quantize --pure; what
run/serve --quantize hold). --dry-run: print each tensor's type, write nothing.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { type: { type: 'string', default: 'q8_0' }, 'dry-run': { type: 'boolean' }, pure: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (positionals.length !== 2) fail('expected an input model and an output file\n' + HELP);
  const [input, out] = positionals as [string, string];
  const type = values.type as OutType;
  if (!Object.hasOwn(OUT_TYPES, type)) fail(`--type '${values.type}' is not one of ${Object.keys(OUT_TYPES).join(', ')}`);
  if (path.resolve(input) === path.resolve(out)) fail('the output file must differ from the input');
  const { format, config, source } = openModelFiles(input);
  try {
    const { tokenizerKv, modelKv } = ggufSideKv(input, format, config, source);
    const name = path.basename(path.resolve(input)).replace(/\.gguf$/, '');
    const plan = convertToGguf(source, format, config, values['dry-run'] ? null : out, type, name, tokenizerKv, modelKv, values.pure);
    if (values['dry-run']) {
      // one line per tensor, in file order: name, type, shape (numpy order)
      process.stdout.write(plan.map((t) => `${t.name} ${t.dtype} ${t.shape.join('x')}\n`).join(''));
      return;
    }
  } finally {
    source.close();
  }
  process.stderr.write(`wrote ${out} (${type}, ${(fs.statSync(out).size / 1e6).toFixed(1)} MB)\n`);
}

/**
 * What a GGUF written from `input` carries besides its tensors: the tokenizer's keys (from a GGUF
 * source, or tokenizer.json in a folder) and, from a GGUF source, its own hyper-parameter keys.
 */
export function ggufSideKv(input: string, format: 'hf' | 'gguf', config: QwenConfig, source: TensorSource): { tokenizerKv: GgufKV[]; modelKv?: GgufKV[] } {
  if (format === 'gguf') {
    const g = source as GgufFile;
    const kv = (keep: (k: string) => boolean) => [...g.metadata].filter(([k]) => keep(k)).map(([key, value]) => ({ key, value, type: g.metadataTypes.get(key)! }));
    return { tokenizerKv: kv((k) => k.startsWith('tokenizer.')), modelKv: kv((k) => !k.startsWith('tokenizer.') && !k.startsWith('general.')) };
  }
  if (fs.existsSync(path.join(input, 'tokenizer.json')) || fs.existsSync(path.join(input, 'vocab.json'))) return { tokenizerKv: ggufTokenizerMetadata(input, config.vocab_size) };
  process.stderr.write(`note: ${input} has no tokenizer.json; the GGUF file will load in qwen.ts but not in llama.cpp\n`);
  return { tokenizerKv: [] };
}
