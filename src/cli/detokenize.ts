// qwen-ts detokenize --model <dir|file.gguf> --ids 1,2,3: prints {"text": "..."}.
import { parseArgs } from 'node:util';
import { resolveModelArg } from './resolve.js';
import { fail } from '../errors.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { requireModel } from '../tokenizer/cli_util.js';

const USAGE = `usage: qwen-ts detokenize --model <dir|file.gguf> --ids 1,2,3 [--skip-special-tokens]
  --ids                  token ids, separated by commas or spaces ("[1, 2, 3]" also accepted)
  --skip-special-tokens  leave out special tokens such as <|im_end|>`;

/** "1,2,3", "1 2 3" or "[1, 2, 3]" -> ids; anything else is named. */
export function parseIds(s: string): number[] {
  const body = s.trim().replace(/^\[/, '').replace(/\]$/, '');
  return body
    .split(/[\s,]+/)
    .filter((x) => x !== '')
    .map((x) => {
      if (!/^\d+$/.test(x) || !Number.isSafeInteger(Number(x))) fail(`--ids: ${JSON.stringify(x)} is not a token id (ids are non-negative integers)`);
      return Number(x);
    });
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', short: 'm' },
      ids: { type: 'string' },
      'skip-special-tokens': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const model = await resolveModelArg(requireModel(values.model, USAGE));
  if (values.ids === undefined) fail(`--ids is required\n${USAGE}`);
  const ids = parseIds(values.ids);
  const tok = loadTokenizer(model);
  const text = tok.decode(ids, { skipSpecialTokens: values['skip-special-tokens'] ?? false });
  process.stdout.write(JSON.stringify({ text }) + '\n');
}
