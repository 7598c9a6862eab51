#!/usr/bin/env node
// qwen-ts command line: dispatches to one module per command, prints user errors without a stack.
import { QwenError, sanitize } from '../errors.js';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<void> }> };

const COMMANDS: Record<string, Command> = {
  run: { summary: 'chat with a model in the terminal, or answer one prompt', load: () => import('./run.js') },
  serve: { summary: 'OpenAI-compatible HTTP API and chat page', load: () => import('./serve.js') },
  bench: { summary: 'prefill/decode tokens per second, load time and peak RSS (--json)', load: () => import('./bench.js') },
  pull: { summary: 'download a model from Hugging Face or ModelScope into the cache', load: () => import('./pull.js') },
  list: { summary: 'list the models in the cache', load: () => import('./list.js') },
  rm: { summary: 'remove a model (or model@revision) from the cache', load: () => import('./rm.js') },
  tokenize: { summary: 'print the token ids of a text as JSON', load: () => import('./tokenize.js') },
  detokenize: { summary: 'print the text of token ids as JSON', load: () => import('./detokenize.js') },
  template: { summary: "render messages with the model's chat template", load: () => import('./template.js') },
  logits: { summary: 'print the logits of a token sequence as JSON', load: () => import('./logits.js') },
  embed: { summary: 'print the embedding of each input as JSON lines (embedding models)', load: () => import('./embed.js') },
  rerank: { summary: 'score documents against a query with a reranker model, best first', load: () => import('./rerank.js') },
  finetune: { summary: 'train a LoRA adapter on a JSONL file of chats or prompt/completion pairs', load: () => import('./finetune.js') },
  quantize: { summary: 'convert an HF folder (or GGUF) to a GGUF file: --type q8_0|q4_0|f16|f32', load: () => import('./quantize.js') },
  merge: { summary: 'add a LoRA adapter into a base model: a GGUF file or HF folder', load: () => import('./merge.js') },
  'export-lora': { summary: 'write a LoRA adapter as a GGUF LoRA file llama.cpp loads', load: () => import('./export_lora.js') },
  web: { summary: 'a chat page that runs the model in the browser (static files and the model, COOP/COEP)', load: () => import('./web.js') },
};

function usage(): string {
  const lines = ['usage: qwen-ts <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  lines.push('', "Run 'qwen-ts <command> --help' for a command's options.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 1;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`qwen-ts: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  try {
    await (await cmd.load()).run(rest);
    return 0;
  } catch (e) {
    if (
      e instanceof QwenError ||
      (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
      (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
      (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'
    ) {
      process.stderr.write(`qwen-ts ${name}: ${sanitize((e as Error).message)}\n`);
      return 1;
    }
    if ((e as { code?: string }).code === 'ENOENT' || (e as { code?: string }).code === 'EISDIR' || (e as { code?: string }).code === 'EACCES') {
      process.stderr.write(`qwen-ts ${name}: ${sanitize((e as Error).message)}\n`);
      return 1;
    }
    process.stderr.write(`qwen-ts ${name}: internal error: ${sanitize((e as Error).stack ?? String(e))}\n`);
    return 70;
  }
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${await import('node:fs').then((fs) => fs.realpathSync(process.argv[1]!))}`).href;
if (isEntry) {
  // EPIPE when stdout is closed early (| head) is not an error for the user.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  process.exitCode = await main(process.argv.slice(2));
}
