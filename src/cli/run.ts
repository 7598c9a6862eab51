// qwen-ts run <model> [prompt]: one streamed answer, or an interactive chat when no prompt is given.
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { chat, openChatModel, prepareChat, type ChatModel, type ChatRequest } from '../chat/engine.js';
import { imageHash } from '../vision/jobs.js';
import type { ImageEmbedding } from '../vision/types.js';
import { fail } from '../errors.js';
import { BACKEND_OPTIONS, backendFromArgs } from '../backend/index.js';
import { ProgressBar } from './progress.js';
import { SPEC_HELP, SPEC_OPTIONS, specFromArgs } from './spec_args.js';
import {
  LOAD_HELP,
  LOAD_OPTIONS,
  LORA_HELP,
  LORA_OPTIONS,
  loraFromArgs,
  mmprojFromArgs,
  quantizeFromArgs,
  readOptionFile,
  resolveModelArg,
  SEQ_HELP,
  SEQ_OPTIONS,
  seqFromArgs,
  VISION_HELP,
  VISION_OPTIONS,
} from './resolve.js';

const HELP = `usage: qwen-ts run <model folder | file.gguf | owner/name> [prompt] [options]
  --system TEXT         system message
  --temperature T       sampling temperature (default 0.7; 0 = greedy)
  --top-p P, --top-k K  nucleus / top-k sampling (defaults 0.8 / 20)
  --max-tokens N        longest answer (default 2048)
  --seed N              reproducible sampling
  --no-think            ask Qwen3 / Qwen3.5 not to think first
  --json                print the final message as JSON instead of streaming text
  --image FILE          a PNG, JPEG, WebP, GIF or BMP the first message shows the model (repeat for
                        more; a vision model: Qwen2.5-VL / Qwen3.5 with its tower)
${VISION_HELP}
${LOAD_HELP}
${LORA_HELP}
${SPEC_HELP}
${SEQ_HELP}
Interactive commands: /clear, /system TEXT, /think on|off, /image FILE, /bye. Ctrl-C stops an answer.`;

type Part = { type: 'text'; text: string } | { type: 'image' };
type Msg = { role: string; content: string | Part[] };

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...SPEC_OPTIONS,
      ...BACKEND_OPTIONS,
      ...LOAD_OPTIONS,
      ...LORA_OPTIONS,
      ...SEQ_OPTIONS,
      ...VISION_OPTIONS,
      image: { type: 'string', multiple: true },
      system: { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      'max-tokens': { type: 'string' },
      seed: { type: 'string' },
      'no-think': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (positionals.length < 1) fail('a model is required\n' + HELP);
  const num = (name: string, v: string | undefined, dflt: number, int = false) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || (int && !Number.isInteger(n))) fail(`--${name} must be a${int ? 'n integer' : ' number'}, got '${v}'`);
    return n;
  };
  const params = {
    temperature: num('temperature', values.temperature, 0.7),
    top_p: num('top-p', values['top-p'], 0.8),
    top_k: num('top-k', values['top-k'], 20, true),
    max_tokens: num('max-tokens', values['max-tokens'], 2048, true),
    seed: values.seed === undefined ? undefined : num('seed', values.seed, 0, true),
  };
  const quantize = quantizeFromArgs(values);
  const { ctxSize, cacheType } = seqFromArgs(values);
  const path = await resolveModelArg(positionals[0]!);
  const spec = await specFromArgs(values);
  const lora = await loraFromArgs(values);
  const bar = new ProgressBar('loading');
  const cm = openChatModel(path, positionals[0]!, {
    backend: backendFromArgs(values),
    lora,
    quantize,
    checkTensors: values['check-tensors'],
    ctxSize,
    cacheType,
    spec,
    mmproj: mmprojFromArgs(values),
    onProgress: (d, t) => bar.update(d, t),
  });
  bar.done();
  if (cm.templateFallback) process.stderr.write('note: the model has no chat template; using plain ChatML\n');
  const state: State = { system: values.system, think: !values['no-think'], history: [], images: [], pending: [] };
  for (const file of values.image ?? []) state.pending.push(await readImage(cm, file, '--image'));
  const prompt = positionals.slice(1).join(' ');
  if (prompt) {
    const r = await answer(cm, state, prompt, params, values.json ?? false, new AbortController().signal);
    if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  await interactive(cm, state, params);
}

interface State {
  system?: string;
  think: boolean;
  history: Msg[];
  /** the rows of the images in the history, in order */
  images: ImageEmbedding[];
  /** images for the next message (--image, /image) */
  pending: ImageEmbedding[];
}

/** An image file through the model's vision tower (errors name the file). */
async function readImage(cm: ChatModel, file: string, how: string): Promise<ImageEmbedding> {
  if (!cm.vision) fail(`${how} ${file}: ${cm.name} has no vision tower; give a vision model (Qwen2.5-VL, Qwen3.5) with its mmproj GGUF (--mmproj)`);
  const bytes = readOptionFile(how, file);
  try {
    return await cm.vision.encode(new Uint8Array(bytes), imageHash(bytes));
  } catch (e) {
    if ((e as Error).name === 'ImageError') fail(`${how} ${file}: ${(e as Error).message}`);
    throw e;
  }
}

async function answer(cm: ChatModel, st: State, text: string, params: Partial<ChatRequest>, quiet: boolean, signal: AbortSignal) {
  // the pending images come first in the message, as a picture and its question are usually written
  const user: Msg = st.pending.length ? { role: 'user', content: [...st.pending.map((): Part => ({ type: 'image' })), { type: 'text', text }] } : { role: 'user', content: text };
  const images = [...st.images, ...st.pending];
  const messages: Msg[] = [...(st.system ? [{ role: 'system', content: st.system }] : []), ...st.history, user];
  const req = { ...params, max_tokens: params.max_tokens!, messages, enable_thinking: st.think, signal };
  const it = chat(cm, req, prepareChat(cm, req, images));
  st.pending = [];
  let content = '',
    reasoning = '';
  const dim = process.stdout.isTTY ? ['\x1b[2m', '\x1b[0m'] : ['', ''];
  let inReasoning = false;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      if (!quiet) process.stdout.write(inReasoning ? `${dim[1]}\n` : '\n');
      if (r.value.finish === 'abort' && !quiet) process.stdout.write('[stopped]\n');
      st.history.push(user, { role: 'assistant', content });
      st.images = images;
      return {
        role: 'assistant',
        content,
        reasoning_content: reasoning || undefined,
        finish_reason: r.value.finish,
        usage: { prompt_tokens: r.value.promptTokens, completion_tokens: r.value.completionTokens },
      };
    }
    const e = r.value;
    if (e.kind === 'reasoning') {
      reasoning += e.text;
      if (!quiet) {
        process.stdout.write(inReasoning ? e.text : `${dim[0]}${e.text}`);
        inReasoning = true;
      }
    } else if (e.kind === 'content') {
      content += e.text;
      if (!quiet) {
        process.stdout.write(inReasoning ? `${dim[1]}\n\n${e.text}` : e.text);
        inReasoning = false;
      }
    }
  }
}

async function interactive(cm: ChatModel, st: State, params: Partial<ChatRequest>): Promise<void> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: '>>> ', terminal: Boolean(process.stdin.isTTY) });
  let current: AbortController | undefined;
  const onSigint = () => {
    if (current) current.abort();
    else process.stdout.write('\nUse Ctrl-D or /bye to exit.\n>>> ');
  };
  rl.on('SIGINT', onSigint);
  process.on('SIGINT', onSigint); // when stdin is not a terminal, the signal reaches the process
  process.stdout.write(`Chatting with ${cm.name}. /? for help.\n`);
  rl.prompt();
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (!text) {
        rl.prompt();
        continue;
      }
      if (text === '/bye' || text === '/exit') break;
      if (text.startsWith('/image')) {
        const file = text.slice('/image'.length).trim();
        if (!file) process.stdout.write('Usage: /image FILE\n');
        else
          await readImage(cm, file, '/image').then(
            (e) => (st.pending.push(e), process.stdout.write(`Image ${file} attached to your next message (${e.nx * e.ny} tokens).\n`)),
            (e: Error) => process.stdout.write(`${e.message}\n`),
          );
        rl.prompt();
        continue;
      }
      if (text.startsWith('/')) {
        process.stdout.write(command(st, text) + '\n');
        rl.prompt();
        continue;
      }
      current = new AbortController();
      rl.pause();
      await answer(cm, st, text, params, false, current.signal);
      current = undefined;
      rl.resume();
      rl.prompt();
    }
  } finally {
    process.off('SIGINT', onSigint);
    rl.close();
  }
}

function command(st: State, text: string): string {
  const [cmd, ...rest] = text.split(/\s+/);
  const arg = text.slice(cmd!.length).trim();
  switch (cmd) {
    case '/clear':
      st.history = [];
      st.images = [];
      st.pending = [];
      return 'Cleared the conversation.';
    case '/system':
      st.system = arg || undefined;
      return arg ? 'System message set.' : 'System message cleared.';
    case '/think':
      if (rest[0] !== 'on' && rest[0] !== 'off') return 'Usage: /think on|off';
      st.think = rest[0] === 'on';
      return `Thinking ${rest[0]}.`;
    case '/?':
    case '/help':
      return '/clear  forget the conversation\n/system TEXT  set the system message\n/think on|off  Qwen3 / Qwen3.5 thinking\n/image FILE  show the model an image with your next message\n/bye  exit';
    default:
      return `Unknown command ${cmd}; /? for help.`;
  }
}
