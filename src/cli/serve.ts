// qwen-ts serve <model> [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--cors ORIGIN,...]
import { parseArgs } from 'node:util';
import { openChatModel, openChatModelThreaded, type ChatModel } from '../chat/engine.js';
import { fail } from '../errors.js';
import { BACKEND_OPTIONS, backendFromArgs } from '../backend/index.js';
import { createServer } from '../server/app.js';
import { originPolicy } from '../server/cors.js';
import { ProgressBar } from './progress.js';
import { SPEC_HELP, SPEC_OPTIONS, specFromArgs } from './spec_args.js';
import { LOAD_HELP, LOAD_OPTIONS, mmprojFromArgs, quantizeFromArgs, resolveModelArg, SEQ_HELP, SEQ_OPTIONS, seqFromArgs, servedLoras, VISION_HELP, VISION_OPTIONS } from './resolve.js';
import { listenOn, parsePort } from './listen.js';

const HELP = `usage: qwen-ts serve <model folder | file.gguf | owner/name> [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--name NAME]
       [--cors ORIGIN,...] [--parallel 8] [--threads N] [--backend wasm|wasm-simd|reference] [--quantize TYPE] [--check-tensors]
       [--cache-mem 1G] [--no-prefix-cache] [--in-process] [--ctx-size N] [--cache-type f32|f16|q8_0] [--response-store N] [--no-access-log]
       [--lora NAME=PATH ...] [--no-remote-images]
--lora NAME=PATH: load a LoRA adapter (PEFT folder or file, GGUF LoRA, or hub id) under NAME (repeat for
        more): a request with "model": "NAME" runs with it, one naming the served model (or none)
        without; other names are a 404. /v1/models lists them. Requests for different adapters and
        the base model are batched together.
--parallel: requests generating at once (batched together); more wait their turn.
--cache-mem: memory for the prefix cache (K, M, G suffixes; a bare number is MiB; default 1G): a
        prompt that starts as an earlier one did (the same system prompt and tools, the previous
        turns) reuses its keys and values instead of computing them again. --no-prefix-cache: off.
--in-process: run the model on the HTTP thread (debugging): by default it runs on an engine thread
        of its own, so /health and streams keep answering during a long prompt.
--no-remote-images: image parts must be data: URLs; http(s) image URLs are refused (400) instead of
        fetched (by default they are, at most 20 MiB, 10 s and 3 redirects each: a server that
        can reach private addresses may not want clients to make it fetch from them).
--response-store: /v1/responses kept for previous_response_id and GET (default 1000, least recently
        used dropped first; 0: none kept). --no-access-log: no line per request on stderr.
--cors: web pages from these origins (e.g. https://app.example.com,http://192.168.1.5:3000) may use
        the server from a browser; '*' allows any site. By default only loopback pages may
        (http(s)://localhost, 127.0.0.1, [::1], any port); others get a 403.
OpenAI-compatible API at http://HOST:PORT/v1 (chat/completions, completions, models), a chat page at /.
Listens on 127.0.0.1 unless --host says otherwise. QWEN_TS_API_KEY sets the key too.
POST bodies must be sent as Content-Type: application/json.
${VISION_HELP}
${SEQ_HELP}
${LOAD_HELP}
${SPEC_HELP}`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...SPEC_OPTIONS,
      ...BACKEND_OPTIONS,
      ...LOAD_OPTIONS,
      ...SEQ_OPTIONS,
      ...VISION_OPTIONS,
      'response-store': { type: 'string' },
      'no-access-log': { type: 'boolean' },
      'no-remote-images': { type: 'boolean' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      'api-key': { type: 'string' },
      cors: { type: 'string' },
      name: { type: 'string' },
      parallel: { type: 'string', default: '8' },
      'cache-mem': { type: 'string' },
      'no-prefix-cache': { type: 'boolean' },
      'in-process': { type: 'boolean' },
      lora: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  if (positionals.length !== 1) fail('expected one model\n' + HELP);
  const port = parsePort(values.port);
  const parallel = Number(values.parallel);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 256) fail(`--parallel must be an integer from 1 to 256, got '${values.parallel}'`);
  const cors = values.cors
    ?.split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  if (cors?.length === 0) fail("--cors needs origins separated by commas, or '*'");
  originPolicy(cors); // a malformed origin fails now, not after the model has loaded
  const quantize = quantizeFromArgs(values);
  const { ctxSize, cacheType } = seqFromArgs(values);
  const store = values['response-store'] === undefined ? undefined : Number(values['response-store']);
  if (store !== undefined && !(Number.isInteger(store) && store >= 0)) fail(`--response-store must be a whole number >= 0, got '${values['response-store']}'`);
  if (values['no-prefix-cache'] && values['cache-mem'] !== undefined) fail('--cache-mem and --no-prefix-cache contradict each other: give one');
  const cacheMem = values['no-prefix-cache'] ? 0 : values['cache-mem'] === undefined ? undefined : parseSize(values['cache-mem'], '--cache-mem');
  const arg = positionals[0]!;
  const path = await resolveModelArg(arg);
  const spec = await specFromArgs(values);
  const lora = await servedLoras(values.lora, values.name ?? arg);
  const bar = new ProgressBar('loading');
  const load = {
    quantize,
    ctxSize,
    cacheType,
    checkTensors: values['check-tensors'],
    parallel,
    cacheMem,
    spec,
    lora,
    mmproj: mmprojFromArgs(values),
    onProgress: (d: number, t: number) => bar.update(d, t),
  };
  const cm: ChatModel = values['in-process']
    ? openChatModel(path, values.name ?? arg, { ...load, backend: backendFromArgs(values) })
    : await openChatModelThreaded(path, values.name ?? arg, { ...load, backend: values.backend, threads: values.threads });
  bar.done();
  if (cm.templateFallback) process.stderr.write('note: the model has no chat template; using plain ChatML\n');
  const server = createServer(cm, {
    apiKey: values['api-key'] ?? process.env.QWEN_TS_API_KEY,
    cors,
    responseStoreSize: store,
    accessLog: !values['no-access-log'],
    images: { remote: !values['no-remote-images'] },
  });
  const where = await listenOn(server, port, values.host);
  process.stderr.write(`serving ${cm.name} at ${where}/v1 (chat page: ${where}/)\n`);
  const stop = () => server.close(() => void (cm.close?.() ?? Promise.resolve()).finally(() => process.exit(0)));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise<void>((r) => server.on('close', r));
}

/** A size in bytes from '512M', '1.5G', '800K' (binary units) or a bare number of MiB (as llama.cpp's --cache-ram). */
export function parseSize(s: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*$/i.exec(s);
  const units: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, '': 2 ** 20 };
  const bytes = m ? Math.floor(Number(m[1]) * units[m[2]!.toUpperCase()]!) : NaN;
  if (!(bytes > 0)) fail(`${flag} must be a size such as 512M, 2G or 800K (a bare number is MiB), got '${s}'`);
  return bytes;
}
