// qwen-ts embed --model M [--text T ... | --file in.jsonl | stdin lines] [--dimensions N] [--instruction TEXT]
// One JSON line {"embedding": [...]} per input, in input order. Also the input reading and model
// opening `qwen-ts rerank` shares.
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import { BACKEND_OPTIONS, backendFromArgs } from '../backend/index.js';
import { loadModel } from '../models/load.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { readStdinText } from '../tokenizer/cli_util.js';
import { embed, type EmbedModel } from '../embed/embed.js';
import type { VectorPooling } from '../embed/pooling.js';
import { LOAD_HELP, LOAD_OPTIONS, quantizeFromArgs, readOptionFile, resolveModelArg } from './resolve.js';

const HELP = `usage: qwen-ts embed --model <model> [--text T ...] [--file in.jsonl] [options]
Prints {"embedding": [...]} (a unit vector) per input, one JSON line each, in input order.
Inputs: each --text, or each line of --file (a JSON string, or an object with a "text" field),
or else each non-empty line of stdin.
  --dimensions N     keep the first N dimensions (Matryoshka), renormalised
  --instruction T    Qwen3-Embedding's query instruction: 'Instruct: T\\nQuery:TEXT' (documents: none)
  --pooling last|mean|cls   pool this way whatever the model's files say (default: their rule:
                     GGUF {arch}.pooling_type, sentence-transformers modules.json + 1_Pooling)
  --truncate         cut inputs longer than the context (default: an error naming the limit)
  --threads N, --backend wasm|wasm-simd|reference
${LOAD_HELP}`;

export const MODEL_OPTIONS = { ...BACKEND_OPTIONS, ...LOAD_OPTIONS, model: { type: 'string', short: 'm' }, help: { type: 'boolean', short: 'h' } } as const;

/** Load the model and tokenizer named by --model (with the backend and load flags). */
export async function openFromArgs(values: { model?: string; backend?: string; threads?: string; quantize?: string; 'check-tensors'?: boolean }, help: string): Promise<EmbedModel> {
  if (!values.model) fail('--model is required\n' + help);
  const p = await resolveModelArg(values.model);
  const tokenizer = loadTokenizer(p);
  const model = loadModel(p, { backend: backendFromArgs(values), quantize: quantizeFromArgs(values), checkTensors: values['check-tensors'] });
  return { model, tokenizer, path: p, name: values.model };
}

/** Texts from a JSONL file: each line a JSON string or an object with a "text" field. */
export function readJsonl(file: string, option: string): string[] {
  const text = readOptionFile(option, file).toString('utf8');
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      fail(`${option} ${file}: line ${i + 1} is not valid JSON (${(e as Error).message})`);
    }
    const t = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? (v as { text?: unknown }).text : undefined;
    if (typeof t !== 'string') fail(`${option} ${file}: line ${i + 1} is neither a JSON string nor an object with a "text" string`);
    out.push(t);
  });
  return out;
}

/** The inputs: the repeated flag's values, else the JSONL file's, else stdin's non-empty lines. */
export async function readInputs(flag: string[] | undefined, file: string | undefined, flagName: string): Promise<string[]> {
  if (flag?.length && file) fail(`give ${flagName} or --file, not both`);
  const inputs = flag?.length
    ? flag
    : file
      ? readJsonl(file, '--file')
      : (await readStdinText())
          .split('\n')
          .map((l) => l.replace(/\r$/, ''))
          .filter((l) => l !== '');
  if (inputs.length === 0) fail(`no input: give ${flagName}, --file in.jsonl, or lines on stdin`);
  return inputs;
}

export function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) fail(`${flag} must be a positive integer, got '${v}'`);
  return Number(v);
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MODEL_OPTIONS,
      text: { type: 'string', short: 't', multiple: true },
      file: { type: 'string' },
      dimensions: { type: 'string' },
      instruction: { type: 'string' },
      pooling: { type: 'string' },
      truncate: { type: 'boolean' },
    },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  const dimensions = positiveInt(values.dimensions, '--dimensions');
  const pooling = values.pooling as VectorPooling | undefined;
  if (pooling !== undefined && !['last', 'mean', 'cls'].includes(pooling)) fail(`--pooling must be last, mean or cls, got '${values.pooling}'`);
  const m = await openFromArgs(values, HELP);
  const inputs = await readInputs(values.text, values.file, '--text');
  const CHUNK = 256; // lines appear as they are ready, and a long file's vectors are not all held
  for (let i = 0; i < inputs.length; i += CHUNK) {
    const r = await embed(m, inputs.slice(i, i + CHUNK), { dimensions, instruction: values.instruction, pooling, truncate: values.truncate });
    process.stdout.write(r.embeddings.map((e) => JSON.stringify({ embedding: Array.from(e) })).join('\n') + '\n');
  }
}
