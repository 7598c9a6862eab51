// qwen-ts export-lora <adapter> <out.gguf>: a PEFT (or GGUF) LoRA adapter as a GGUF LoRA file that
// llama.cpp loads (--lora, node-llama-cpp's lora option) onto the base model.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fail, quote } from '../errors.js';
import { exportGgufLora, loraModelType } from '../lora/gguf_lora.js';
import { readAdapter, resolveAdapter } from '../lora/load.js';
import { checkAdapter } from '../lora/targets.js';
import { openModelFiles } from '../models/load.js';
import type { ModelType } from '../models/config.js';
import { resolveModelArg } from './resolve.js';

const HELP = `usage: qwen-ts export-lora <adapter> <out.gguf> [--base MODEL | --arch qwen2|qwen3|qwen35|qwen2moe|qwen3moe]
Writes a LoRA adapter (PEFT folder or file, or hub id) as a llama.cpp GGUF LoRA file (general.type
adapter, tensors blk.N.*.weight.lora_a / lora_b, adapter.lora.alpha). llama.cpp checks the file's
architecture against the model's: it is read from --base (whose shapes are also checked), --arch,
or else guessed from the adapter's base_model_name_or_path (Qwen3.5 -> qwen35, Qwen3 -> qwen3, Qwen2 / Qwen2.5 -> qwen2).
Scales llama.cpp cannot express as one alpha / r (rslora with several ranks, alpha_pattern) are
folded into lora_b.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { base: { type: 'string' }, arch: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (positionals.length !== 2) fail('expected an adapter and an output .gguf file\n' + HELP);
  const [adapterArg, out] = positionals as [string, string];
  if (!/\.gguf$/i.test(out)) fail(`the output ${quote(out)} must be a .gguf file`);
  if (values.base && values.arch) fail('--base and --arch say the same thing: give one');
  const adapter = readAdapter(await resolveAdapter(adapterArg));
  let arch: ModelType | undefined;
  if (values.base) {
    const { config, source } = openModelFiles(await resolveModelArg(values.base));
    source.close();
    checkAdapter(config, adapter);
    arch = config.model_type;
  } else if (values.arch) {
    arch = loraModelType(values.arch);
    if (!arch) fail(`--arch must be one of qwen2, qwen3, qwen35, qwen2moe, qwen3moe (llama.cpp's names), got ${quote(values.arch)}`);
  } else {
    const b = adapter.config.base_model_name_or_path ?? '';
    const moe = /-A\d+(\.\d+)?B|moe/i.test(b);
    arch = /qwen3\.[56]/i.test(b) && !moe ? 'qwen3_5_text' : /qwen3(?!\.)/i.test(b) ? (moe ? 'qwen3_moe' : 'qwen3') : /qwen(2|1\.5)/i.test(b) ? (moe ? 'qwen2_moe' : 'qwen2') : undefined;
    if (!arch) fail(`cannot tell the base model's architecture from base_model_name_or_path ${quote(b || '(none)')}: give --base MODEL or --arch qwen2|qwen3|qwen35`);
  }
  exportGgufLora(adapter, out, arch);
  process.stderr.write(`wrote ${path.resolve(out)} (${adapter.modules.length} LoRA weights, ${arch})\n`);
}
