// qwen-ts template --model <dir|file.gguf> --messages msgs.json [--tools tools.json]
//   [--thinking | --no-thinking] [--no-generation-prompt]: prints the rendered prompt exactly (no newline added).
import { parseArgs } from 'node:util';
import { resolveModelArg } from './resolve.js';
import { fail } from '../errors.js';
import { chatTemplateFor, renderChat } from '../tokenizer/chat_template.js';
import { readJsonArg, requireModel } from '../tokenizer/cli_util.js';
import { loadTokenizer } from '../tokenizer/load.js';

const USAGE = `usage: qwen-ts template --model <dir|file.gguf> --messages msgs.json [--tools tools.json] [--thinking | --no-thinking] [--no-generation-prompt]
  --messages              JSON array of {"role", "content"} messages ('-' reads stdin)
  --tools                 JSON array of OpenAI-style tools
  --thinking              enable_thinking=true (Qwen3.5's small-model template thinks only then)
  --no-thinking           enable_thinking=false (Qwen3, Qwen3.5)
  --no-generation-prompt  do not open the assistant's turn at the end`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', short: 'm' },
      messages: { type: 'string' },
      tools: { type: 'string' },
      'no-thinking': { type: 'boolean' },
      thinking: { type: 'boolean' },
      'no-generation-prompt': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const model = await resolveModelArg(requireModel(values.model, USAGE));
  if (values.messages === undefined) fail(`--messages is required\n${USAGE}`);
  const messages = await readJsonArg(values.messages, '--messages');
  if (values.thinking && values['no-thinking']) fail('--thinking and --no-thinking contradict each other');
  const tools = values.tools === undefined ? undefined : await readJsonArg(values.tools, '--tools');
  const tok = loadTokenizer(model);
  const { template, fallback } = chatTemplateFor(tok);
  if (fallback) process.stderr.write(`note: ${model} has no chat template; using plain ChatML (no tools, no thinking switch)\n`);
  const text = renderChat(template, {
    messages,
    tools,
    addGenerationPrompt: !values['no-generation-prompt'],
    enableThinking: values['no-thinking'] ? false : values.thinking ? true : undefined,
    bosToken: tok.bosToken ?? null,
    eosToken: tok.eosToken ?? null,
  });
  process.stdout.write(text);
}
