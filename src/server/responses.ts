// The OpenAI Responses API: POST /v1/responses (streamed or not), GET and DELETE /v1/responses/{id}.
// A request's input items (after the stored conversation of previous_response_id, if any) become
// chat messages, its function tools and text.format the chat path's tools and response format,
// and the turn runs through the same planning and engine as /v1/chat/completions.
import type * as http from 'node:http';
import { chat, type ChatEvent, type ChatResult, type ChatModel } from '../chat/engine.js';
import { noteUsage } from './access_log.js';
import { planChat } from './chat_plan.js';
import type { Handler, ServerContext } from './context.js';
import { ApiError, badParam } from './errors.js';
import { abortOnClose, json, startSse, toApiError, type Obj } from './http.js';
import { checkMessagesBound } from './limits.js';
import { requestAdapter, servedName } from './models.js';
import { isObj, samplingParams, templateOptions, toolChoice, type ResponseFormat } from './openai.js';
import { inputItems, itemsToMessages } from './response_input.js';
import { encodeImages, imageRefs } from './images.js';
import { newId, OutputBuilder } from './response_output.js';

export const createResponse: Handler = async ({ cm, tokenBytes, store, images: imageOpts }, body, req, res) => {
  const ctx = cm.config.max_position_embeddings;
  if (body.background === true) throw badParam('background', 'background responses are not supported', 'unsupported_value');
  if (body.conversation !== undefined && body.conversation !== null)
    throw badParam('conversation', "conversations are not supported; continue a conversation with 'previous_response_id'", 'unsupported_value');
  if (body.truncation !== undefined && body.truncation !== null && body.truncation !== 'disabled')
    throw badParam('truncation', "only truncation 'disabled' is supported: a conversation longer than the context is refused", 'unsupported_value');
  const instructions = optString(body, 'instructions');
  const prevId = optString(body, 'previous_response_id');
  const keep = optBool(body, 'store') ?? true;
  const parallel = optBool(body, 'parallel_tool_calls') ?? true;
  const metadata = body.metadata ?? {};
  if (!isObj(metadata)) throw badParam('metadata', "'metadata' must be an object", 'invalid_type');
  const prev = prevId === undefined ? undefined : store.get(prevId);
  if (prevId !== undefined && !prev) throw badParam('previous_response_id', `Previous response with id '${prevId}' not found (${store.describe()})`, 'previous_response_not_found');
  if (body.input === undefined || body.input === null) throw badParam('input', "'input' is required", 'missing_required_parameter');
  const history = prev ? [...prev.input, ...(prev.response.output as Obj[])] : [];
  const items = [...history, ...inputItems(body.input, store)];
  const msgs = itemsToMessages(items, instructions, history.length);
  checkMessagesBound(msgs, ctx, tokenBytes, 'input');
  const tools = functionTools(body.tools);
  const { tools: chatTools, choice } = toolChoice({ tools: tools.chat, tool_choice: chatToolChoice(body.tool_choice) });
  const format = textFormat(body.text);
  const sp = { ...samplingParams(body, ctx, cm.tokenizer.vocabSize, 'responses'), ...requestAdapter(cm, body) };
  const effort = reasoningEffort(body.reasoning);
  const tpl = templateOptions(body);
  // Qwen's thinking is on or off: effort 'none' turns it off, any other effort on
  const enable_thinking = effort === undefined ? tpl.enable_thinking : effort !== 'none';
  const signal = abortOnClose(req, res);
  const images = await encodeImages(cm, imageRefs(msgs), imageOpts, signal); // fetched, checked, encoded: before any stream starts
  const plan = planChat(cm, {
    images,
    messages: msgs,
    tools: chatTools,
    choice,
    format: format.parsed,
    sampling: sp,
    enable_thinking,
    template_kwargs: tpl.template_kwargs,
    params: { messages: 'input', schema: 'text.format.schema' },
  });

  const response: Obj = {
    id: newId('resp'),
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: servedName(cm, sp.adapter),
    output: [],
    parallel_tool_calls: parallel,
    previous_response_id: prevId ?? null,
    reasoning: { effort: effort ?? null, summary: null },
    store: keep,
    temperature: sp.temperature ?? null,
    text: { format: format.echo },
    tool_choice: body.tool_choice ?? 'auto',
    tools: tools.echo,
    top_p: sp.top_p ?? null,
    truncation: 'disabled',
    usage: null,
    user: null,
    metadata,
  };
  const events = chat(cm, { ...plan.request, signal, constraint: plan.constraint }, plan.prepared);
  let seq = 0;
  const sse = sp.stream ? startSse(res) : undefined;
  const emit = (type: string, fields: Obj) => sse?.({ type, sequence_number: seq++, ...fields }, type);
  emit('response.created', { response: { ...response } });
  emit('response.in_progress', { response: { ...response } });
  const out = new OutputBuilder(emit);
  let r: IteratorResult<ChatEvent, ChatResult>;
  try {
    while (!(r = await events.next()).done) out.push(r.value);
  } catch (e) {
    if (!sse) throw e;
    // mid-stream: the response failed; the stream says so and ends
    const err = toApiError(e);
    if (err.status >= 500) process.stderr.write(`qwen-ts serve: ${(e as Error).stack ?? String(e)}\n`);
    emit('response.failed', { response: { ...response, status: 'failed', output: out.output, error: { code: err.code ?? 'server_error', message: err.message } } });
    return void res.end();
  }
  if (r.value.finish === 'abort') return void res.end();
  const incomplete = r.value.finish === 'length';
  out.finish(incomplete ? 'incomplete' : 'completed');
  Object.assign(response, {
    status: incomplete ? 'incomplete' : 'completed',
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    output: out.output,
    usage: responseUsage(cm, r.value, out.reasoningText),
  });
  noteUsage(res, r.value);
  if (keep) store.put({ response, input: items });
  if (!sse) return json(res, 200, response);
  emit(incomplete ? 'response.incomplete' : 'response.completed', { response });
  res.end();
};

/** GET /v1/responses/{id}, DELETE /v1/responses/{id}. */
export function storedResponse({ store }: ServerContext, method: string, id: string, res: http.ServerResponse): void {
  const notFound = () => new ApiError(404, `Response with id '${id}' not found.`, null, 'not_found');
  if (method === 'DELETE') {
    if (!store.delete(id)) throw notFound();
    return json(res, 200, { id, object: 'response', deleted: true });
  }
  const e = store.get(id);
  if (!e) throw notFound();
  json(res, 200, e.response);
}

function responseUsage(cm: ChatModel, r: ChatResult, reasoning: string): Obj {
  const cached = r.cachedTokens ?? 0;
  // the engine counts tokens, not which of them were thinking: the reasoning text re-tokenised
  const reasoningTokens = reasoning ? Math.min(cm.tokenizer.encode(reasoning).length, r.completionTokens) : 0;
  return {
    input_tokens: r.promptTokens,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: r.completionTokens,
    output_tokens_details: { reasoning_tokens: reasoningTokens },
    total_tokens: r.promptTokens + r.completionTokens,
  };
}

function optString(body: Obj, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badParam(name, `'${name}' must be a string`, 'invalid_type');
  return v;
}

function optBool(body: Obj, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badParam(name, `'${name}' must be true or false`, 'invalid_type');
  return v;
}

/** Responses function tools ({type, name, description, parameters, strict}) in the chat form. */
function functionTools(tools: unknown): { chat?: Obj[]; echo: Obj[] } {
  if (tools === undefined || tools === null) return { echo: [] };
  if (!Array.isArray(tools)) throw badParam('tools', "'tools' must be an array", 'invalid_type');
  const echo = tools.map((t, i) => {
    if (!isObj(t)) throw badParam(`tools[${i}]`, `tools[${i}] must be an object`, 'invalid_type');
    if (t.type !== 'function')
      throw badParam(`tools[${i}].type`, `tools[${i}].type ${JSON.stringify(t.type)} is not supported: only function tools run here (the client executes them)`, 'unsupported_value');
    if (typeof t.name !== 'string' || !t.name) throw badParam(`tools[${i}].name`, `tools[${i}].name must be a non-empty string`);
    const p = t.parameters ?? undefined;
    if (p !== undefined && !isObj(p)) throw badParam(`tools[${i}].parameters`, `tools[${i}].parameters must be a JSON Schema object`);
    if (t.description !== undefined && t.description !== null && typeof t.description !== 'string') throw badParam(`tools[${i}].description`, `tools[${i}].description must be a string`);
    if (t.strict !== undefined && t.strict !== null && typeof t.strict !== 'boolean') throw badParam(`tools[${i}].strict`, `tools[${i}].strict must be true or false`);
    return { type: 'function', name: t.name, description: t.description ?? null, parameters: p ?? null, strict: t.strict ?? true };
  });
  const chatTools = echo.map((t) => ({
    type: 'function',
    function: { name: t.name, ...(t.description ? { description: t.description } : {}), ...(t.parameters ? { parameters: t.parameters } : {}) },
  }));
  return { chat: chatTools, echo };
}

function chatToolChoice(c: unknown): unknown {
  if (c === undefined || c === null || c === 'auto' || c === 'none' || c === 'required') return c;
  if (isObj(c) && c.type === 'function' && typeof c.name === 'string') return { type: 'function', function: { name: c.name } };
  throw badParam('tool_choice', "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"name\": ...}", 'unsupported_value');
}

/** text.format: {type: 'text'}, {type: 'json_object'} or {type: 'json_schema', name, schema, strict}. */
function textFormat(text: unknown): { parsed: ResponseFormat; echo: Obj } {
  if (text === undefined || text === null) return { parsed: { type: 'text' }, echo: { type: 'text' } };
  if (!isObj(text)) throw badParam('text', "'text' must be an object", 'invalid_type');
  const f = text.format;
  if (f === undefined || f === null) return { parsed: { type: 'text' }, echo: { type: 'text' } };
  if (!isObj(f) || typeof f.type !== 'string') throw badParam('text.format', '\'text.format\' must be {"type": "text" | "json_object" | "json_schema", ...}');
  if (f.type === 'text' || f.type === 'json_object') return { parsed: { type: f.type }, echo: { type: f.type } };
  if (f.type !== 'json_schema') throw badParam('text.format.type', `text.format type '${f.type}' is not supported`, 'unsupported_value');
  if (!isObj(f.schema)) throw badParam('text.format.schema', "'text.format.schema' must be a JSON Schema object");
  if (f.name !== undefined && typeof f.name !== 'string') throw badParam('text.format.name', "'text.format.name' must be a string");
  const name = (f.name as string | undefined) ?? 'response';
  return {
    parsed: { type: 'json_schema', schema: f.schema, name },
    echo: { type: 'json_schema', name, schema: f.schema, strict: f.strict ?? true, ...(typeof f.description === 'string' ? { description: f.description } : {}) },
  };
}

const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'];

function reasoningEffort(r: unknown): string | undefined {
  if (r === undefined || r === null) return undefined;
  if (!isObj(r)) throw badParam('reasoning', "'reasoning' must be an object", 'invalid_type');
  if (r.effort === undefined || r.effort === null) return undefined;
  if (typeof r.effort !== 'string' || !EFFORTS.includes(r.effort)) throw badParam('reasoning.effort', `'reasoning.effort' must be one of ${EFFORTS.join(', ')}`);
  return r.effort;
}
