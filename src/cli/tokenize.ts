// qwen-ts tokenize --model <dir|file.gguf> [--text "..."]: prints {"ids": [...]}.
// Without --text the text is all of stdin, byte for byte. Added tokens written in the text
// (<|im_start|> ...) become their ids, as Hugging Face does by default.
import { parseArgs } from 'node:util';
import { resolveModelArg } from './resolve.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { readStdinText, requireModel } from '../tokenizer/cli_util.js';

const USAGE = `usage: qwen-ts tokenize --model <dir|file.gguf> [--text "..."] [--split-special-tokens]
  --text                  the text (default: read all of stdin, nothing trimmed)
  --split-special-tokens  read special tokens such as <|im_end|> as plain text`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', short: 'm' },
      text: { type: 'string', short: 't' },
      'split-special-tokens': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const tok = loadTokenizer(await resolveModelArg(requireModel(values.model, USAGE)));
  const text = values.text ?? (await readStdinText());
  const ids = tok.encode(text, { parseSpecial: !values['split-special-tokens'] });
  process.stdout.write(JSON.stringify({ ids }) + '\n');
}
