// qwen-ts logits --model <dir|file.gguf> --tokens 1,2,3 [--all]
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import { BACKEND_OPTIONS, backendFromArgs } from '../backend/index.js';
import { loadModel } from '../models/load.js';
import { LOAD_HELP, LOAD_OPTIONS, LORA_HELP, LORA_OPTIONS, loraFromArgs, quantizeFromArgs, resolveModelArg, SEQ_HELP, SEQ_OPTIONS, seqFromArgs } from './resolve.js';

const HELP = `usage: qwen-ts logits --model <dir|file.gguf> --tokens 1,2,3 [--all]
Evaluates the tokens in one batched pass and prints {"logits": [...]} for the last position,
or with --all {"logits": [[...], ...]} for every position.
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
  const model = loadModel(path, { backend: backendFromArgs(values), quantize, checkTensors: values['check-tensors'], ctxSize, cacheType, lora });
  const ctx = model.config.max_position_embeddings;
  if (ids.length > ctx) fail(`--tokens has ${ids.length} tokens, more than the ${ctxSize ? '--ctx-size' : "model's"} context of ${ctx}`);
  const cache = model.newCache(ids.length);
  const logits = model.forward(
    ids.map((token, pos) => ({ token, pos, seq: 0, logits: values.all || pos === ids.length - 1 })),
    [cache],
  );
  const V = model.config.vocab_size;
  const rows = Array.from({ length: logits.length / V }, (_, r) => Array.from(logits.subarray(r * V, (r + 1) * V)));
  process.stdout.write(JSON.stringify({ logits: values.all ? rows : rows[0] }) + '\n');
}
