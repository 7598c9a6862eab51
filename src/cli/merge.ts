// qwen-ts merge <base> <adapter> <out>: the adapter's deltas added into the base's weights
// (src/lora/merge.ts), written as a GGUF file (out ends in .gguf) or a Hugging Face folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import type { DType } from '../formats/dtype.js';
import { writeShardedSafetensors, writeSafetensors, type StTensorLazy } from '../formats/safetensors_writer.js';
import { convertToGguf, type OutType } from '../formats/to_gguf.js';
import { readAdapter, resolveAdapter } from '../lora/load.js';
import { mergedSource } from '../lora/merge.js';
import { checkAdapter } from '../lora/targets.js';
import { openModelFiles } from '../models/load.js';
import { ggufSideKv } from './quantize.js';
import { resolveModelArg } from './resolve.js';

const HELP = `usage: qwen-ts merge <base model> <adapter> <out.gguf | out folder> [--lora-scale S]
Adds a LoRA adapter (PEFT folder or file, GGUF LoRA, or hub id) into the base model's weights:
W + scale * B A, computed in float64, stored in the base's float type (F32 / F16 / BF16). A
quantised base is dequantised: its GGUF output is F16 throughout (quantise it again with
qwen-ts quantize), its adapted weights in a folder F32. Output by name: a .gguf file (that
llama.cpp loads), else a Hugging Face folder (config, tokenizer and other files copied from an HF base).`;

// files of an HF model folder that are not weights: copied with the merged weights
const SIDE = /^(?!model[.-].*safetensors|.*\.safetensors\.index\.json$).*\.(json|txt|jinja|model|md)$/;
const MAX_SHARD = 4 << 30;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { 'lora-scale': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (positionals.length !== 3) fail('expected a base model, an adapter and an output\n' + HELP);
  const [baseArg, adapterArg, out] = positionals as [string, string, string];
  const scale = values['lora-scale'] === undefined ? 1 : Number(values['lora-scale']);
  if (!Number.isFinite(scale)) fail(`--lora-scale must be a number, got '${values['lora-scale']}'`);
  const base = await resolveModelArg(baseArg);
  const adapter = readAdapter(await resolveAdapter(adapterArg));
  if (path.resolve(out) === path.resolve(base)) fail('the output must differ from the base model');
  const { format, config, source } = openModelFiles(base);
  try {
    checkAdapter(config, adapter);
    const notes: string[] = [];
    const merged = mergedSource(source, format, config.model_type, adapter, { scale, notes });
    const types = new Set([...source.tensors.values()].filter((t) => t.shape.length === 2).map((t) => t.dtype));
    const float = (['BF16', 'F16', 'F32'] as DType[]).find((t) => types.has(t) && types.size === 1);
    if (/\.gguf$/i.test(out)) {
      const type: OutType = float === 'BF16' ? 'bf16' : float === 'F32' ? 'f32' : 'f16';
      if (!float) notes.push(`the base's matrices are ${[...types].join(' / ')}: the merged GGUF holds them as F16 (qwen-ts quantize re-quantises it)`);
      const { tokenizerKv, modelKv } = ggufSideKv(base, format, config, source);
      convertToGguf(merged, format, config, out, type, `${path.basename(path.resolve(base)).replace(/\.gguf$/i, '')}+${adapter.name}`, tokenizerKv, modelKv);
    } else {
      if (format !== 'hf') fail(`${base} is a GGUF file: merge it into a .gguf output (a Hugging Face folder needs an HF base's config.json)`);
      fs.mkdirSync(out, { recursive: true });
      const tensors: StTensorLazy[] = [...merged.tensors.values()].map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        data: () => {
          const b = new Uint8Array(t.byteLength);
          merged.readInto(t.name, b);
          return b;
        },
      }));
      const total = tensors.reduce((a, t) => a + merged.tensors.get(t.name)!.byteLength, 0);
      if (total > MAX_SHARD) writeShardedSafetensors(out, tensors, MAX_SHARD);
      else writeSafetensors(path.join(out, 'model.safetensors'), tensors);
      for (const f of fs.readdirSync(base)) if (SIDE.test(f) && fs.statSync(path.join(base, f)).isFile()) fs.copyFileSync(path.join(base, f), path.join(out, f));
    }
    for (const n of notes) process.stderr.write(`note: ${n}\n`);
  } finally {
    source.close();
  }
  process.stderr.write(`wrote ${out} (${adapter.modules.length} weights merged from ${adapter.name})\n`);
}
