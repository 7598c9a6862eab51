// qwen-ts logits --model <dir|file.gguf> --tokens 1,2,3 [--all] [--image FILE [--mmproj FILE]]
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import { BACKEND_OPTIONS, backendFromArgs } from '../backend/index.js';
import { loadModel } from '../models/load.js';
import { imagePromptEntries } from './logits_image.js';
import { LOAD_HELP, LOAD_OPTIONS, LORA_HELP, LORA_OPTIONS, loraFromArgs, quantizeFromArgs, resolveModelArg, SEQ_HELP, SEQ_OPTIONS, seqFromArgs } from './resolve.js';

const HELP = `usage: qwen-ts logits --model <dir|file.gguf> --tokens 1,2,3 [--all]
Evaluates the tokens in one batched pass and prints {"logits": [...]} for the last position,
or with --all {"logits": [[...], ...]} for every position.
  --image FILE     a PNG or JPEG in place of the one <|image_pad|> id in --tokens (expanded to the
                   image's nx * ny pads, as the HF processor does; --all then gives every one)
  --mmproj FILE    the vision tower (mmproj GGUF); default: the one mmproj*.gguf beside a GGUF
                   model that fits it, or an HF folder's own visual.* tensors
${LOAD_HELP}
${LORA_HELP}
${SEQ_HELP}`;

export function parseIds(s: string, what: string): number[] {
  const parts = s.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) fail(`${what} must be a comma-separated list of non-negative integers, got '${s}'`);
  return parts.map(Number);
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...BACKEND_OPTIONS,
      ...LOAD_OPTIONS,
      ...LORA_OPTIONS,
      ...SEQ_OPTIONS,
      model: { type: 'string' },
      tokens: { type: 'string' },
      all: { type: 'boolean' },
      image: { type: 'string' },
      mmproj: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (!values.model) fail('--model is required\n' + HELP);
  if (values.tokens === undefined) fail('--tokens is required\n' + HELP);
  const ids = parseIds(values.tokens, '--tokens');
  const quantize = quantizeFromArgs(values);
  const { ctxSize, cacheType } = seqFromArgs(values);
  const path = await resolveModelArg(values.model);
  const lora = await loraFromArgs(values);
  if (values.mmproj !== undefined && values.image === undefined) fail('--mmproj is for --image: give both, or neither');
  const model = loadModel(path, { backend: backendFromArgs(values), quantize, checkTensors: values['check-tensors'], ctxSize, cacheType, lora, mmproj: values.mmproj });
  const batch =
    values.image === undefined
      ? ids.map((token, pos) => ({ token, pos, seq: 0, logits: values.all || pos === ids.length - 1 }))
      : await imagePromptEntries(model, path, values.image, ids, (pos, n) => values.all || pos === n - 1);
  const ctx = model.config.max_position_embeddings;
  if (batch.length > ctx) fail(`--tokens has ${batch.length} tokens${values.image ? ' with the image' : ''}, more than the ${ctxSize ? '--ctx-size' : "model's"} context of ${ctx}`);
  const cache = model.newCache(batch.length);
  const logits = model.forward(batch, [cache]);
  const V = model.config.vocab_size;
  const rows = Array.from({ length: logits.length / V }, (_, r) => Array.from(logits.subarray(r * V, (r + 1) * V)));
  process.stdout.write(JSON.stringify({ logits: values.all ? rows : rows[0] }) + '\n');
}
