// qwen-ts rm <owner/name>[@revision] [--hub hf|modelscope]
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import { removeCached } from '../hub/catalog.js';
import { fmtBytes } from '../hub/download.js';
import { parseHub } from '../hub/ids.js';

const HELP = `usage: qwen-ts rm <owner/name>[@revision] [--hub hf|modelscope]
Removes a model from the cache; with @revision only that snapshot (and the files no other
snapshot of the model uses).`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { hub: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (positionals.length === 0) fail(`expected a model id\n${HELP}`);
  for (const id of positionals) {
    const r = removeCached(id, { hub: values.hub ? parseHub(values.hub) : undefined });
    process.stdout.write(`removed ${r.removed.join(', ')} (${fmtBytes(r.freed)} freed)\n`);
  }
}
