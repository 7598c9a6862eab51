// The HTTP plumbing every endpoint shares: JSON bodies in and out, server-sent events, a signal that
// fires when the client goes away, and errors as OpenAI-style bodies.
import type * as http from 'node:http';
import { QwenError } from '../errors.js';
import { ApiError, badParam } from './errors.js';
import { isObj } from './openai.js';

export type Obj = Record<string, unknown>;

/** The request body as a JSON object of at most `limit` bytes, naming the served `model`. */
export async function readBody(req: http.IncomingMessage, limit: number, model: string, adapters: readonly string[] = []): Promise<Obj> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new ApiError(413, `request body is larger than ${limit} bytes`, null, 'request_too_large');
    chunks.push(c);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`, null, 'invalid_json');
  }
  if (!isObj(body)) throw new ApiError(400, 'request body must be a JSON object', null, 'invalid_json');
  if (typeof body.model !== 'string') throw badParam('model', "'model' is required", 'missing_required_parameter');
  if (body.model !== model && !adapters.includes(body.model)) {
    throw new ApiError(
      404,
      `The model '${body.model}' does not exist; this server serves '${model}'${adapters.length ? ` and its LoRA adapters ${adapters.map((a) => `'${a}'`).join(', ')}` : ''}`,
      'model',
      'model_not_found',
    );
  }
  return body;
}

/** Aborts when the client disconnects before the answer is complete. */
export function abortOnClose(req: http.IncomingMessage, res: http.ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  req.on('aborted', () => ac.abort());
  return ac.signal;
}

export function json(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) }).end(data);
}

/** Starts an event stream; the sender writes `data:` lines, with an `event:` line when named. */
export function startSse(res: http.ServerResponse): (data: unknown, event?: string) => void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.flushHeaders();
  return (data, event) => {
    if (!res.writableEnded && !res.destroyed) res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
  };
}

export function toApiError(e: unknown): ApiError {
  return e instanceof ApiError
    ? e
    : e instanceof QwenError
      ? new ApiError(400, e.message, null, 'invalid_request')
      : new ApiError(500, `internal error: ${(e as Error).message}`, null, 'internal_error');
}

export function sendError(res: http.ServerResponse, e: unknown): void {
  const err = toApiError(e);
  if (err.status >= 500) process.stderr.write(`qwen-ts serve: ${(e as Error).stack ?? String(e)}\n`);
  if (res.headersSent) {
    // mid-stream: tell the client in the stream, then end it
    if (!res.writableEnded) res.end(`data: ${JSON.stringify(err.body())}\n\n`);
    return;
  }
  const data = JSON.stringify(err.body());
  res.writeHead(err.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...(err.status === 413 ? { Connection: 'close' } : {}) }).end(data);
}
