// A Hugging Face model folder by URL (`.../<folder>/`, or a hub id's resolve URL with no file):
// config.json, the tokenizer's files, and model.safetensors or the shards model.safetensors.index.json
// names. The small files are fetched whole; each shard's header by Range requests, its tensors
// streamed later (streamed.ts) like a GGUF file's.
import type { TensorInfo } from '../formats/file.js';
import { parseHfConfig } from '../models/config.js';
import { hfTokenizerSpecFromFiles } from '../tokenizer/hf_loader.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { fail, quote } from '../errors.js';
import { readSafetensorsHeader, type FetchFn, type RangeSource } from './remote.js';
import type { StreamedModel } from './streamed.js';

/** The files the HF tokenizer loader may read (hf_loader.ts). */
const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'generation_config.json',
  'config.json',
  'chat_template.jinja',
  'chat_template.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
];

/** A small file's text, or undefined when the server says 404. */
async function text(url: string, fetchFn: FetchFn, signal?: AbortSignal): Promise<string | undefined> {
  const r = await fetchFn(url, { signal });
  if (r.status === 404) {
    await r.body?.cancel();
    return undefined;
  }
  if (!r.ok) fail(`${url}: HTTP ${r.status} ${r.statusText}`);
  return r.text();
}

function json(url: string, t: string): unknown {
  try {
    return JSON.parse(t);
  } catch (e) {
    fail(`${url}: not valid JSON (${(e as Error).message})`);
  }
}

/** Open the folder at `base` (a URL ending in '/'): its config, tensor tables and tokenizer. */
export async function openHfFolder(base: string, open: (url: string) => Promise<RangeSource>, fetchFn: FetchFn, signal?: AbortSignal): Promise<{ model: StreamedModel; tokenizer: Tokenizer }> {
  const dir = base.replace(/\/+$/, '');
  const files = new Map<string, string>();
  await Promise.all(
    TOKENIZER_FILES.map(async (n) => {
      const t = await text(`${dir}/${n}`, fetchFn, signal);
      if (t !== undefined) files.set(n, t);
    }),
  );
  const cfgText = files.get('config.json');
  if (cfgText === undefined) fail(`${dir}/config.json: not found; a Hugging Face model folder has one (a GGUF model is one file: give its URL)`);
  const config = parseHfConfig(json(`${dir}/config.json`, cfgText), `${dir}/config.json`);
  const tokenizer = new Tokenizer(hfTokenizerSpecFromFiles(dir, files));

  let shards = ['model.safetensors'];
  let weightMap: Record<string, unknown> | undefined;
  const indexUrl = `${dir}/model.safetensors.index.json`;
  const index = await text(indexUrl, fetchFn, signal);
  if (index !== undefined) {
    const wm = (json(indexUrl, index) as { weight_map?: unknown }).weight_map;
    if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) fail(`${indexUrl}: no weight_map object`);
    weightMap = wm as Record<string, unknown>;
    shards = [...new Set(Object.values(weightMap))] as string[];
    for (const n of shards) if (typeof n !== 'string' || n.includes('/') || n.includes('\\') || n.startsWith('.')) fail(`${indexUrl}: shard name ${JSON.stringify(n)} is not a plain file name`);
  }
  const tensors = new Map<string, TensorInfo>();
  const sources = new Map<string, RangeSource>();
  for (const n of shards) {
    const src = await open(`${dir}/${n}`);
    sources.set(src.name, src);
    for (const info of (await readSafetensorsHeader(src, signal)).infos) {
      if (tensors.has(info.name)) fail(`${src.name}: tensor ${quote(info.name)} is also in ${tensors.get(info.name)!.file}`);
      if (weightMap && weightMap[info.name] !== n) fail(`${src.name}: tensor ${quote(info.name)} is in this shard, but ${indexUrl} places it in ${quote(weightMap[info.name] ?? '(nowhere)')}`);
      tensors.set(info.name, info);
    }
  }
  if (weightMap) for (const [name, shard] of Object.entries(weightMap)) if (!tensors.has(name)) fail(`${indexUrl}: tensor ${quote(name)} should be in shard ${quote(shard)} but is not there`);
  return { model: { path: dir, format: 'hf', config, tensors, sources }, tokenizer };
}
