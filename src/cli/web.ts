// qwen-ts web <model> [--port P] [--host H] [--no-isolation] [--hub-url URL]: a chat page in which the
// model runs in the browser. This process only serves files (src/web/server.ts): it never loads
// the model, so a hub id is not pulled here: the page downloads it into the browser's cache.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fail } from '../errors.js';
import { parseSplitName } from '../formats/gguf_split.js';
import { HF_DEFAULT_ENDPOINT } from '../hub/hf.js';
import { looksLikeModelRef, parseModelRef } from '../hub/ids.js';
import { createWebServer, modelFilesOf, type WebConfig } from '../web/server.js';
import { listenOn, parsePort } from './listen.js';

const HELP = `usage: qwen-ts web <file.gguf | model folder | owner/name[/FILE.gguf]> [--port 8080] [--host 127.0.0.1] [--no-isolation] [--hub-url URL]
Serves a chat page at http://HOST:PORT/ that runs the model in the browser (WebAssembly, in a Web
Worker); this process only serves the page, the browser build and the model's files (Range requests).
  --no-isolation   leave out the Cross-Origin-Opener-Policy / -Embedder-Policy headers: the page is then
                   not cross-origin isolated and runs the model on one thread (it says so)
  --hub-url URL    the hub a hub id is downloaded from, by the page (default: HF_ENDPOINT or
                   https://huggingface.co); the page keeps the file in the browser's cache
A local GGUF file (one file: merge a split set first), a folder holding one, or a Hugging Face folder (config.json,
*.safetensors, tokenizer.json) is served as it is; a hub id (owner/name[/FILE.gguf][@revision]) is
downloaded by the page. The browser holds the whole model in one WebAssembly
memory: at most 4 GiB of weights and cache (the page says so when a model is larger).`;

export interface WebModel {
  config: WebConfig;
  files: Map<string, string>;
}

/** What the page loads: a local model's files (served here) or a hub file (fetched by the page). */
export function resolveWebModel(arg: string, hubUrl: string | undefined): WebModel {
  if (fs.existsSync(arg)) {
    const { files, entry } = modelFilesOf(path.resolve(arg));
    // a folder with no GGUF is a Hugging Face folder: the page reads it by its URL (ending in '/')
    if (!entry && !files.has('config.json')) fail(`${arg}: neither a GGUF file nor a Hugging Face folder (config.json + *.safetensors + tokenizer.json)`);
    // the page's loader reads one GGUF file (browser/load.ts refuses a shard too, for other pages)
    const split = parseSplitName(decodeURIComponent(entry));
    if (split) fail(`${arg}: a split GGUF (${split.count} files); the page reads a model from one file: merge the set first (llama-gguf-split --merge)`);
    return { config: { name: path.basename(path.resolve(arg)), source: { url: `/model/${entry}` } }, files };
  }
  if (!looksLikeModelRef(arg)) fail(`${arg}: no such model folder or file, and not a hub id (owner/name/FILE.gguf)`);
  const ref = parseModelRef(arg);
  if (ref.hub === 'modelscope') fail(`${arg}: the page downloads from Hugging Face only (--hub-url for a mirror); use an hf: id`);
  const base = (hubUrl ?? process.env.HF_ENDPOINT ?? HF_DEFAULT_ENDPOINT).replace(/\/+$/, '');
  try {
    if (!/^https?:$/.test(new URL(base).protocol)) throw new Error();
  } catch {
    fail(`--hub-url must be an http(s) URL, got '${base}'`);
  }
  const name = ref.file ? `${ref.repo}/${ref.file}` : ref.repo;
  return { config: { name, source: { hub: ref.repo, ...(ref.file && { file: ref.file }), revision: ref.revision }, hubBaseUrl: base }, files: new Map() };
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      'no-isolation': { type: 'boolean' },
      'hub-url': { type: 'string' },
      'no-access-log': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(`${HELP}\n`);
  if (positionals.length !== 1) fail(`expected one model\n${HELP}`);
  const port = parsePort(values.port);
  const model = resolveWebModel(positionals[0]!, values['hub-url']);
  const isolation = !values['no-isolation'];
  const server = createWebServer({
    config: model.config,
    modelFiles: model.files,
    isolation,
    log: values['no-access-log'] ? undefined : (line) => process.stderr.write(`${line}\n`),
  });
  const where = await listenOn(server, port, values.host);
  process.stderr.write(`qwen-ts web: ${model.config.name} at ${where}/ (the model runs in the browser${isolation ? '' : '; --no-isolation: one thread'})\n`);
  // browsers grant cross-origin isolation (and the Cache API) only to secure contexts: https, or loopback
  if (!/^(127\.|::1$|localhost$)/.test(values.host ?? ''))
    process.stderr.write(
      'note: a page opened by another address than localhost is not a secure context over http: the browser runs it on one thread and without a cache; put it behind https for more\n',
    );
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // keep-alive connections from the page would hold close() open
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise<void>((r) => server.on('close', r));
}
