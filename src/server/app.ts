// The OpenAI-compatible HTTP server (node:http): /v1/models, /v1/chat/completions (SSE or not,
// tools, response_format, logprobs, reasoning_content), /v1/completions, /health, and the chat
// page at /. Every request runs through the model's scheduler, so concurrent requests are
// batched; a client that disconnects stops its generation. Browser pages from other origins are
// refused unless allowed (cors.ts); prompts that cannot fit are refused before the costly
// template rendering and tokenisation (limits.ts).
import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { chat, complete, prepareChat, RESERVED_TEMPLATE_VARS, type ChatEvent, type ChatModel, type ChatResult } from '../chat/engine.js';
import type { Constraint } from '../generate/sequence.js';
import { jsonConstraint, toolCallConstraint, validateSchema, validateTools } from '../generate/constrain/index.js';
import { QwenError } from '../errors.js';
import { originPolicy, requireJson } from './cors.js';
import { ApiError, badParam } from './errors.js';
import { checkMessagesBound, checkPromptBound, maxTokenBytes } from './limits.js';
import { isObj, messages, responseFormat, samplingParams, toolChoice } from './openai.js';
import { PAGE_HTML } from './page/page.js';

export interface ServerOptions {
  apiKey?: string;
  /** largest request body accepted (default 8 MiB) */
  maxBodyBytes?: number;
  /**
   * Browser origins allowed besides loopback ones (http(s)://localhost, 127.0.0.1, [::1], any
   * port), e.g. 'https://app.example.com'; '*' allows every origin. Requests from other origins
   * get a 403; requests without an Origin header (not from a web page) are unaffected.
   */
  cors?: readonly string[];
}

type Obj = Record<string, unknown>;

export function createServer(cm: ChatModel, opts: ServerOptions = {}): http.Server {
  const created = Math.floor(Date.now() / 1000);
  const limit = opts.maxBodyBytes ?? 8 << 20;
  const origins = originPolicy(opts.cors); // throws on a malformed origin, before listening
  const tokenBytes = maxTokenBytes(cm.tokenizer);
  return http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => sendError(res, e));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new ApiError(400, `invalid request target '${req.url}'`, null, 'invalid_url');
    }
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '') || '/'}`;
    // before anything runs: a page from a foreign origin gets a 403 (preflight included) and no CORS headers
    if (req.method === 'OPTIONS') return void res.writeHead(204, origins.preflight(req)).end();
    for (const [k, v] of Object.entries(origins.check(req))) res.setHeader(k, v);
    if (route === 'GET /') return void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE_HTML);
    if (route === 'GET /health') return json(res, 200, { status: 'ok', model: cm.name, active_requests: cm.scheduler.load });
    if (url.pathname.startsWith('/v1/') && opts.apiKey !== undefined) {
      const auth = req.headers.authorization ?? '';
      if (auth !== `Bearer ${opts.apiKey}`) throw new ApiError(401, 'Incorrect API key provided', null, 'invalid_api_key');
    }
    switch (route) {
      case 'GET /v1/models':
        return json(res, 200, { object: 'list', data: [{ id: cm.name, object: 'model', created, owned_by: 'qwen-ts' }] });
      case 'POST /v1/chat/completions':
        requireJson(req);
        return chatCompletions(await readBody(req), req, res);
      case 'POST /v1/completions':
        requireJson(req);
        return completions(await readBody(req), req, res);
    }
    if (['/v1/models', '/v1/chat/completions', '/v1/completions', '/health', '/'].includes(url.pathname.replace(/\/+$/, '') || '/')) {
      throw new ApiError(405, `${req.method} is not allowed on ${url.pathname}`, null, 'method_not_allowed');
    }
    throw new ApiError(404, `no route ${req.method} ${url.pathname}`, null, 'not_found');
  }

  async function readBody(req: http.IncomingMessage): Promise<Obj> {
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
    if (body.model !== cm.name) throw new ApiError(404, `The model '${body.model}' does not exist; this server serves '${cm.name}'`, 'model', 'model_not_found');
    return body;
  }

  function abortOnClose(req: http.IncomingMessage, res: http.ServerResponse): AbortSignal {
    const ac = new AbortController();
    res.on('close', () => { if (!res.writableFinished) ac.abort(); });
    req.on('aborted', () => ac.abort());
    return ac.signal;
  }

  async function chatCompletions(body: Obj, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const ctx = cm.config.max_position_embeddings;
    checkMessagesBound(body.messages, ctx, tokenBytes);
    const msgs = messages(body);
    const { tools, choice } = toolChoice(body);
    const fmt = responseFormat(body);
    const sp = samplingParams(body, ctx, cm.tokenizer.vocabSize);
    const kw = body.chat_template_kwargs;
    if (kw !== undefined && !isObj(kw)) throw badParam('chat_template_kwargs', "'chat_template_kwargs' must be an object");
    const reserved = Object.keys(kw ?? {}).find((k) => k !== 'enable_thinking' && RESERVED_TEMPLATE_VARS.has(k));
    if (reserved !== undefined) throw badParam(`chat_template_kwargs.${reserved}`, `chat_template_kwargs may not set '${reserved}': the server sets that template variable itself`);
    const think = (kw as Obj | undefined)?.enable_thinking ?? body.enable_thinking;
    if (think !== undefined && typeof think !== 'boolean') throw badParam('chat_template_kwargs.enable_thinking', "'enable_thinking' must be true or false");
    // other chat_template_kwargs reach the template as variables, as in vLLM / llama.cpp's server
    const { enable_thinking: _, ...templateKwargs } = (kw ?? {}) as Obj;
    const request = { ...sp, messages: msgs, tools, enable_thinking: think as boolean | undefined, template_kwargs: templateKwargs };
    const prepared = prepareChat(cm, request);
    if (prepared.ids.length >= ctx) throw new ApiError(400, `the prompt has ${prepared.ids.length} tokens; this model's context holds ${ctx}`, 'messages', 'context_length_exceeded');
    const budget = { maxTokens: Math.min(sp.max_tokens, ctx - prepared.ids.length) }; // what the constraint may spend
    let constraint: Constraint | undefined;
    if (tools) {
      // a forced call is written in the template's format (XML for Qwen3.5): its limits apply then
      const bad = validateTools(tools, choice.name, choice.mode === 'required' ? cm.toolFormat : 'json');
      if (bad) throw badParam('tools', bad);
    }
    if (choice.mode === 'required') {
      constraint = toolCallConstraint(cm.tokenizer, tools as never, choice.name, { ...budget, format: cm.toolFormat });
    } else if (fmt.type !== 'text') {
      if (fmt.type === 'json_schema') {
        const bad = validateSchema(fmt.schema);
        if (bad) throw badParam('response_format.json_schema.schema', `invalid or unsupported schema: ${bad}`);
      }
      constraint = jsonConstraint(cm.tokenizer, fmt.type === 'json_schema' ? { type: 'json_schema', schema: fmt.schema } : { type: 'json_object' }, budget);
    }
    const signal = abortOnClose(req, res);
    const events = chat(cm, { ...request, signal, constraint: constraint && (() => constraint!) }, prepared);
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const base = { id, created: Math.floor(Date.now() / 1000), model: cm.name, system_fingerprint: 'qwen-ts' };
    const finishReason = (r: ChatResult, calls: number) => (calls > 0 ? 'tool_calls' : r.finish === 'length' ? 'length' : 'stop');

    if (!sp.stream) {
      let content = '', reasoning = '';
      const toolCalls: Obj[] = [];
      const lps: Obj[] = [];
      let r: IteratorResult<ChatEvent, ChatResult>;
      while (!(r = await events.next()).done) {
        const e = r.value;
        if (e.kind === 'content') content += e.text;
        else if (e.kind === 'reasoning') reasoning += e.text;
        else if (e.kind === 'tool_call') toolCalls.push({ id: e.call.id, type: 'function', function: { name: e.call.name, arguments: e.call.arguments } });
        else lps.push(logprobEntry(e));
      }
      if (r.value.finish === 'abort') return;
      const message: Obj = { role: 'assistant', content: content || (toolCalls.length ? null : '') };
      if (reasoning) message.reasoning_content = reasoning;
      if (toolCalls.length) message.tool_calls = toolCalls;
      return json(res, 200, {
        ...base, object: 'chat.completion',
        choices: [{ index: 0, message, logprobs: sp.logprobs ? { content: lps } : null, finish_reason: finishReason(r.value, toolCalls.length) }],
        usage: usage(r.value),
      });
    }

    const sse = startSse(res);
    const chunk = (delta: Obj, extra: Obj = {}) => sse({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: null, ...extra }] });
    chunk({ role: 'assistant', content: '' });
    let calls = 0;
    let r: IteratorResult<ChatEvent, ChatResult>;
    while (!(r = await events.next()).done) {
      const e = r.value;
      if (e.kind === 'content') chunk({ content: e.text });
      else if (e.kind === 'reasoning') chunk({ reasoning_content: e.text });
      else if (e.kind === 'tool_call') chunk({ tool_calls: [{ index: calls++, id: e.call.id, type: 'function', function: { name: e.call.name, arguments: e.call.arguments } }] });
      else chunk({}, { logprobs: { content: [logprobEntry(e)] } });
    }
    if (r.value.finish === 'abort') return void res.end();
    chunk({}, { finish_reason: finishReason(r.value, calls) });
    if (sp.includeUsage) sse({ ...base, object: 'chat.completion.chunk', choices: [], usage: usage(r.value) });
    res.end('data: [DONE]\n\n');
  }

  async function completions(body: Obj, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const ctx = cm.config.max_position_embeddings;
    let prompt = body.prompt;
    if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
    if (typeof prompt !== 'string' || prompt === '') throw badParam('prompt', "'prompt' must be a non-empty string");
    const sp = samplingParams(body, ctx, cm.tokenizer.vocabSize, true);
    checkPromptBound(prompt, ctx, tokenBytes);
    const n = cm.tokenizer.encode(prompt).length;
    if (n >= ctx) throw new ApiError(400, `the prompt has ${n} tokens; this model's context holds ${ctx}`, 'prompt', 'context_length_exceeded');
    const events = complete(cm, prompt, { ...sp, signal: abortOnClose(req, res) });
    const id = `cmpl-${randomUUID().replace(/-/g, '')}`;
    const base = { id, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: cm.name };
    const lp = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Obj[] };
    const send = sp.stream ? startSse(res) : undefined;
    let text = '';
    let r: IteratorResult<{ text: string } | ChatEvent, ChatResult>;
    while (!(r = await events.next()).done) {
      const e = r.value;
      if ('kind' in e && e.kind === 'logprobs') {
        lp.tokens.push(e.token); lp.token_logprobs.push(e.logprob);
        lp.top_logprobs.push(Object.fromEntries(e.top.map((t) => [t.token, t.logprob])));
      } else if ('text' in e) {
        text += e.text;
        send?.({ ...base, choices: [{ index: 0, text: e.text, logprobs: null, finish_reason: null }] });
      }
    }
    if (r.value.finish === 'abort') return void res.end();
    const finish = r.value.finish === 'length' ? 'length' : 'stop';
    if (send) {
      send({ ...base, choices: [{ index: 0, text: '', logprobs: null, finish_reason: finish }] });
      if (sp.includeUsage) send({ ...base, choices: [], usage: usage(r.value) });
      return void res.end('data: [DONE]\n\n');
    }
    json(res, 200, { ...base, choices: [{ index: 0, text, logprobs: sp.logprobs ? lp : null, finish_reason: finish }], usage: usage(r.value) });
  }
}

function usage(r: ChatResult) {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}

function logprobEntry(e: Extract<ChatEvent, { kind: 'logprobs' }>): Obj {
  return { token: e.token, logprob: e.logprob, bytes: e.bytes, top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })) };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) }).end(data);
}

function startSse(res: http.ServerResponse): (data: unknown) => void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.flushHeaders();
  return (data) => { if (!res.writableEnded && !res.destroyed) res.write(`data: ${JSON.stringify(data)}\n\n`); };
}

function sendError(res: http.ServerResponse, e: unknown): void {
  const err = e instanceof ApiError ? e
    : e instanceof QwenError ? new ApiError(400, e.message, null, 'invalid_request')
    : new ApiError(500, `internal error: ${(e as Error).message}`, null, 'internal_error');
  if (err.status >= 500) process.stderr.write(`qwen-ts serve: ${(e as Error).stack ?? String(e)}\n`);
  if (res.headersSent) {
    // mid-stream: tell the client in the stream, then end it
    if (!res.writableEnded) res.end(`data: ${JSON.stringify(err.body())}\n\n`);
    return;
  }
  const data = JSON.stringify(err.body());
  res.writeHead(err.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...(err.status === 413 ? { Connection: 'close' } : {}) }).end(data);
}
