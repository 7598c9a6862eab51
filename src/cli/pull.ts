// qwen-ts pull <owner/name>[@revision] [--hub hf|modelscope] [--file NAME.gguf]: download into the shared cache,
// progress on stderr, the local path (what --model takes) on stdout.
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import { parseHub } from '../hub/ids.js';
import { streamProgress, SILENT } from '../hub/progress.js';
import { pullModel } from '../hub/pull.js';
import { fmtBytes } from '../hub/download.js';

const HELP = `usage: qwen-ts pull <owner/name>[@revision] [--hub hf|modelscope] [--file NAME.gguf] [--revision REV] [--quiet]
Downloads a model (config, tokenizer, safetensors weights, or one GGUF file) into the cache
($HF_HOME/hub, or $MODELSCOPE_CACHE for --hub modelscope), verifying every file's size and hash,
resuming interrupted downloads. Prints the local path to give to --model.
Environment: HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_OFFLINE=1 (cache only),
             MODELSCOPE_DOMAIN, MODELSCOPE_API_TOKEN, MODELSCOPE_CACHE.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      hub: { type: 'string' },
      file: { type: 'string' },
      revision: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (positionals.length !== 1) fail(`expected one model id, got ${positionals.length}\n${HELP}`);
  const r = await pullModel(positionals[0]!, {
    hub: values.hub ? parseHub(values.hub) : undefined,
    file: values.file,
    revision: values.revision,
    progress: values.quiet ? SILENT : streamProgress(process.stderr),
  });
  if (!values.quiet) process.stderr.write(`${r.repo}@${r.revision} -> ${r.commit.slice(0, 12)}: ${r.files.length} files, ${fmtBytes(r.downloaded)} downloaded\n`);
  process.stdout.write(r.path + '\n');
}
