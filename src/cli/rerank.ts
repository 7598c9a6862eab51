// qwen-ts rerank --model M --query Q [--document D ... | --file docs.jsonl | stdin lines] [--top-n N]
// One JSON line {"index", "relevance_score", "document"} per document, most relevant first.
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import { rerank, RERANK_INSTRUCTION } from '../embed/rerank.js';
import { MODEL_OPTIONS, openFromArgs, positiveInt, readInputs } from './embed.js';
import { LOAD_HELP } from './resolve.js';

const HELP = `usage: qwen-ts rerank --model <model> --query Q [--document D ...] [--file docs.jsonl] [options]
Scores each document against the query with a Qwen3-Reranker model (the probability of "yes"
against "no" after its prompt) and prints {"index", "relevance_score", "document"} per document,
one JSON line each, most relevant first. Documents: each --document, or each line of --file (a JSON
string, or an object with a "text" field), or else each non-empty line of stdin.
  --top-n N          print only the N most relevant
  --instruction T    the task (default: '${RERANK_INSTRUCTION}')
  --truncate         cut documents whose prompt is longer than the context (default: an error)
  --threads N, --backend wasm|wasm-simd|reference
${LOAD_HELP}`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MODEL_OPTIONS,
      query: { type: 'string', short: 'q' },
      document: { type: 'string', short: 'd', multiple: true },
      file: { type: 'string' },
      'top-n': { type: 'string' },
      instruction: { type: 'string' },
      truncate: { type: 'boolean' },
    },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (values.query === undefined) fail('--query is required\n' + HELP);
  const topN = positiveInt(values['top-n'], '--top-n');
  const m = await openFromArgs(values, HELP);
  const docs = await readInputs(values.document, values.file, '--document');
  const r = await rerank(m, values.query, docs, { topN, instruction: values.instruction, truncate: values.truncate });
  process.stdout.write(r.results.map((x) => JSON.stringify({ ...x, document: docs[x.index] })).join('\n') + '\n');
}
