// POST /v1/embeddings (OpenAI: input as a string, strings, token ids or arrays of them; dimensions;
// encoding_format float or base64 = little-endian float32; usage) and POST /v1/rerank (the shape
// llama.cpp, vLLM and Jina accept: query, documents, top_n; results best first with index and
// relevance_score). Bad parameters are ApiErrors naming them; a client that goes away stops the
// batch between forward passes.
import type * as http from 'node:http';
import { QwenError } from '../errors.js';
import type { ChatModel } from '../chat/engine.js';
import { checkDimensions, embed, vectorPooling, type EmbedInput, type EmbedOptions, type EmbedResult } from '../embed/embed.js';
import { rerank, type RerankOptions, type RerankResult } from '../embed/rerank.js';
import { noteUsage } from './access_log.js';
import type { ServerContext } from './context.js';
import { ApiError, badParam } from './errors.js';
import { abortOnClose, json, type Obj } from './http.js';
import { baseModelOnly } from './models.js';
import { isObj } from './openai.js';

/** A QwenError from the engine as a 400 naming `param` (context overflows get OpenAI's code). */
async function as400<T>(param: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof QwenError)) throw e;
    throw new ApiError(400, e.message, param, /context holds/.test(e.message) ? 'context_length_exceeded' : 'invalid_value');
  }
}

/** embed() and rerank() where the weights are: this thread, or the engine thread (EngineClient). */
interface Runner {
  embed(inputs: readonly EmbedInput[], opts: EmbedOptions): Promise<EmbedResult>;
  rerank(query: string, documents: readonly string[], opts: RerankOptions): Promise<RerankResult>;
}

function runner(cm: ChatModel): Runner {
  if (cm.model) {
    const m = { model: cm.model, tokenizer: cm.tokenizer, path: cm.path, name: cm.name };
    return { embed: (inputs, opts) => embed(m, inputs, opts), rerank: (q, docs, opts) => rerank(m, q, docs, opts) };
  }
  const remote = cm.scheduler as Partial<Runner>;
  if (remote.embed && remote.rerank) return remote as Runner;
  throw new ApiError(501, `${cm.name}'s engine does not compute embeddings or rerank scores`, null, 'not_implemented');
}

const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'number');

/** `input`: a string, an array of strings, one array of token ids, or an array of them. */
function inputs(body: Obj): EmbedInput[] {
  const x = body.input;
  if (x === undefined) throw badParam('input', "'input' is required", 'missing_required_parameter');
  if (typeof x === 'string') return [x];
  if (!Array.isArray(x)) throw badParam('input', "'input' must be a string, an array of strings, an array of token ids, or an array of token-id arrays");
  if (x.length === 0) throw badParam('input', "'input' is an empty array: give at least one input");
  if (isIds(x)) return [x];
  x.forEach((v, i) => {
    if (typeof v !== 'string' && !isIds(v)) throw badParam('input', `input[${i}] must be a string or a non-empty array of token ids`);
  });
  return x as EmbedInput[];
}

function optBool(body: Obj, key: string): boolean | undefined {
  const v = body[key];
  if (v !== undefined && typeof v !== 'boolean') throw badParam(key, `'${key}' must be true or false`);
  return v as boolean | undefined;
}

function optString(body: Obj, key: string): string | undefined {
  const v = body[key];
  if (v !== undefined && typeof v !== 'string') throw badParam(key, `'${key}' must be a string`);
  return v as string | undefined;
}

export async function embeddings(ctx: ServerContext, body: Obj, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const cm = ctx.cm,
    run = runner(cm);
  baseModelOnly(cm, body, 'embeddings');
  await as400('model', () => vectorPooling(cm)); // a chat model: say what it is, before reading the input
  const input = inputs(body);
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') throw badParam('encoding_format', "'encoding_format' must be 'float' or 'base64'");
  const dims = body.dimensions;
  if (dims !== undefined && typeof dims !== 'number') throw badParam('dimensions', "'dimensions' must be a positive integer");
  await as400('dimensions', () => checkDimensions(dims as number | undefined, cm.config.hidden_size));
  const opts = { dimensions: dims as number | undefined, truncate: optBool(body, 'truncate'), instruction: optString(body, 'instruction'), signal: abortOnClose(req, res) };
  const r = await as400('input', () => run.embed(input, opts));
  // base64: the float32 bytes, little-endian (the byte order of every host Node runs on)
  const encode = (e: Float32Array) => (format === 'base64' ? Buffer.from(e.buffer, e.byteOffset, e.byteLength).toString('base64') : Array.from(e));
  noteUsage(res, { promptTokens: r.promptTokens, completionTokens: 0 });
  json(res, 200, {
    object: 'list',
    data: r.embeddings.map((e, index) => ({ object: 'embedding', index, embedding: encode(e) })),
    model: ctx.cm.name,
    usage: { prompt_tokens: r.promptTokens, total_tokens: r.promptTokens },
  });
}

export async function reranking(ctx: ServerContext, body: Obj, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const run = runner(ctx.cm);
  baseModelOnly(ctx.cm, body, 'rerank requests');
  const query = body.query;
  if (typeof query !== 'string' || query === '') throw badParam('query', "'query' must be a non-empty string");
  const docs = body.documents;
  if (!Array.isArray(docs) || docs.length === 0) throw badParam('documents', "'documents' must be a non-empty array of strings");
  // Jina / Cohere also send {"text": ...} objects
  const texts = docs.map((d, i) => {
    const t = isObj(d) ? d.text : d;
    if (typeof t !== 'string' || t === '') throw badParam('documents', `documents[${i}] must be a non-empty string (or an object with a "text" string)`);
    return t;
  });
  const topN = body.top_n;
  if (topN !== undefined && (typeof topN !== 'number' || !Number.isInteger(topN) || topN < 1)) throw badParam('top_n', "'top_n' must be a positive integer");
  const withDocs = optBool(body, 'return_documents') ?? true;
  const opts = { topN: topN as number | undefined, truncate: optBool(body, 'truncate'), instruction: optString(body, 'instruction'), signal: abortOnClose(req, res) };
  const r = await as400('documents', () => run.rerank(query, texts, opts));
  noteUsage(res, { promptTokens: r.promptTokens, completionTokens: 0 });
  json(res, 200, {
    object: 'list',
    model: ctx.cm.name,
    results: r.results.map((x) => ({ ...x, ...(withDocs ? { document: { text: texts[x.index] } } : {}) })),
    usage: { prompt_tokens: r.promptTokens, total_tokens: r.promptTokens },
  });
}
