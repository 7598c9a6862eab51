// Request validation for the OpenAI-compatible endpoints: every field checked for type and range,
// each mistake answered with a 400 naming the parameter.
import { RESERVED_TEMPLATE_VARS, type SamplingRequest } from '../chat/engine.js';
import { checkSamplerParams } from '../generate/sampler.js';
import { badParam } from './errors.js';
import { chatPart } from './images.js';

type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function num(body: Obj, name: string, min: number, max: number, int = false): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isInteger(v))) throw badParam(name, `'${name}' must be ${int ? 'an integer' : 'a number'}`, 'invalid_type');
  if (v < min || v > max) throw badParam(name, `'${name}' must be between ${min} and ${max}, got ${v}`);
  return v;
}

function bool(body: Obj, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badParam(name, `'${name}' must be true or false`, 'invalid_type');
  return v;
}

/** Which endpoint's field names apply: they differ in max tokens, logprobs and n. */
export type Api = 'chat' | 'completions' | 'responses';

export type Sampling = SamplingRequest & { stream: boolean; includeUsage: boolean; n: number };

/**
 * Sampling fields shared by chat, completions and responses (OpenAI's, plus top_k / min_p /
 * repetition_penalty as vLLM accepts them). `vocab`: the tokenizer's id count, which logit_bias
 * keys must be below.
 */
export function samplingParams(body: Obj, maxContext: number, vocab: number, api: Api = 'chat'): Sampling {
  // each choice is its own sequence in the scheduler; more than --parallel of them wait their turn
  const n = api === 'responses' ? 1 : (num(body, 'n', 1, 128, true) ?? 1);
  const maxTokens =
    api === 'responses' ? num(body, 'max_output_tokens', 1, maxContext, true) : (num(body, 'max_completion_tokens', 1, maxContext, true) ?? num(body, 'max_tokens', 1, maxContext, true));
  let stop = body.stop;
  if (stop === null || stop === undefined) stop = [];
  if (typeof stop === 'string') stop = [stop];
  if (!Array.isArray(stop) || stop.length > 4 || stop.some((s) => typeof s !== 'string' || s === '')) throw badParam('stop', "'stop' must be a non-empty string or an array of at most 4 of them");
  // chat: logprobs (bool) + top_logprobs (0..20); legacy completions: logprobs is the count (0..5);
  // responses: include ["message.output_text.logprobs"] + top_logprobs
  const legacy = api === 'completions' ? num(body, 'logprobs', 0, 5, true) : undefined;
  const include = body.include;
  if (api === 'responses' && include !== undefined && include !== null && (!Array.isArray(include) || include.some((x) => typeof x !== 'string')))
    throw badParam('include', "'include' must be an array of strings");
  const logprobs = api === 'completions' ? legacy !== undefined : api === 'responses' ? Array.isArray(include) && include.includes('message.output_text.logprobs') : bool(body, 'logprobs');
  const top = api === 'completions' ? legacy : num(body, 'top_logprobs', 0, 20, true);
  if (top !== undefined && !logprobs && api === 'chat') throw badParam('top_logprobs', "'top_logprobs' needs 'logprobs': true");
  const bias = body.logit_bias;
  if (bias !== undefined && bias !== null && !isObj(bias)) throw badParam('logit_bias', "'logit_bias' must be an object mapping token ids (as strings) to numbers from -100 to 100", 'invalid_type');
  const so = body.stream_options;
  if (so !== undefined && so !== null && !isObj(so)) throw badParam('stream_options', "'stream_options' must be an object");
  const out = {
    n,
    max_tokens: maxTokens ?? maxContext,
    temperature: num(body, 'temperature', 0, 2),
    top_p: num(body, 'top_p', 0, 1),
    top_k: num(body, 'top_k', 0, 1e6, true),
    min_p: num(body, 'min_p', 0, 1),
    presence_penalty: num(body, 'presence_penalty', -2, 2),
    frequency_penalty: num(body, 'frequency_penalty', -2, 2),
    repetition_penalty: num(body, 'repetition_penalty', 0.01, 10),
    seed: num(body, 'seed', -(2 ** 53), 2 ** 53, true),
    logit_bias: isObj(bias) && Object.keys(bias).length ? (bias as Record<number, number>) : undefined,
    stop: stop as string[],
    logprobs: logprobs ?? false,
    top_logprobs: logprobs ? top : undefined,
    stream: bool(body, 'stream') ?? false,
    includeUsage: isObj(so) && so.include_usage === true,
  };
  const bad = checkSamplerParams(out, vocab); // the sampler's own rules, checked before any stream starts
  if (bad) throw badParam(bad.split(' ')[0]!.replace(/\[.*$/, ''), bad); // 'logit_bias[5] must ...' names logit_bias
  return out;
}

export interface ToolChoice {
  mode: 'none' | 'auto' | 'required';
  name?: string;
}

/** tools + tool_choice: the tools are checked here, the named function must exist. */
export function toolChoice(body: Obj): { tools?: Obj[]; choice: ToolChoice } {
  const tools = body.tools;
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) throw badParam('tools', "'tools' must be an array");
    tools.forEach((t, i) => {
      if (!isObj(t) || t.type !== 'function' || !isObj(t.function) || typeof t.function.name !== 'string' || !t.function.name) {
        throw badParam(`tools[${i}]`, `tools[${i}] must be {"type": "function", "function": {"name": ..., "parameters": {...}}}`);
      }
      const p = t.function.parameters;
      if (p !== undefined && !isObj(p)) throw badParam(`tools[${i}].function.parameters`, 'parameters must be a JSON Schema object');
    });
  }
  const list = (tools as Obj[] | undefined)?.length ? (tools as Obj[]) : undefined;
  const c = body.tool_choice;
  let choice: ToolChoice;
  if (c === undefined || c === null || c === 'auto') choice = { mode: 'auto' };
  else if (c === 'none' || c === 'required') choice = { mode: c };
  else if (isObj(c) && c.type === 'function' && isObj(c.function) && typeof c.function.name === 'string') choice = { mode: 'required', name: c.function.name };
  else throw badParam('tool_choice', '\'tool_choice\' must be \'none\', \'auto\', \'required\' or {"type": "function", "function": {"name": ...}}');
  if (choice.mode === 'required' && !list) throw badParam('tool_choice', `tool_choice '${choice.name ?? 'required'}' needs 'tools'`);
  if (choice.name && !list!.some((t) => (t.function as Obj).name === choice.name)) throw badParam('tool_choice', `tool_choice names '${choice.name}', which is not among the tools`);
  return { tools: choice.mode === 'none' ? undefined : list, choice };
}

export type ResponseFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: Obj; name: string };

export function responseFormat(body: Obj): ResponseFormat {
  const f = body.response_format;
  if (f === undefined || f === null) return { type: 'text' };
  if (!isObj(f) || typeof f.type !== 'string') throw badParam('response_format', '\'response_format\' must be {"type": "text" | "json_object" | "json_schema", ...}');
  if (f.type === 'text' || f.type === 'json_object') return { type: f.type };
  if (f.type !== 'json_schema') throw badParam('response_format.type', `response_format type '${f.type}' is not supported`);
  const js = f.json_schema;
  if (!isObj(js) || !isObj(js.schema)) throw badParam('response_format.json_schema', '\'json_schema\' must be {"name": ..., "schema": {...}}');
  return { type: 'json_schema', schema: js.schema, name: typeof js.name === 'string' ? js.name : 'response' };
}

/** Messages: a non-empty array of {role, content}; content as a string, or text and image parts (kept as parts when there is an image). */
export function messages(body: Obj): Obj[] {
  const m = body.messages;
  if (!Array.isArray(m) || m.length === 0) throw badParam('messages', "'messages' must be a non-empty array", 'invalid_type');
  return m.map((msg, i) => {
    if (!isObj(msg) || typeof msg.role !== 'string') throw badParam(`messages[${i}]`, `messages[${i}] must be an object with a 'role'`);
    if (!['system', 'developer', 'user', 'assistant', 'tool'].includes(msg.role))
      throw badParam(`messages[${i}].role`, `messages[${i}].role '${msg.role}' is not one of system, user, assistant, tool`);
    let content = msg.content;
    if (Array.isArray(content)) {
      // text parts are joined; with an image, the parts stay for the template to place it
      const parts = content.map((p, j) => chatPart(p, `messages[${i}].content[${j}]`));
      content = parts.some((p) => p.type === 'image') ? parts : parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
    }
    if (content !== null && content !== undefined && typeof content !== 'string' && !Array.isArray(content)) throw badParam(`messages[${i}].content`, `messages[${i}].content must be a string`);
    if ((content === null || content === undefined) && !(msg.role === 'assistant' && Array.isArray(msg.tool_calls))) throw badParam(`messages[${i}].content`, `messages[${i}] has no content`);
    const out: Obj = { ...msg, role: msg.role === 'developer' ? 'system' : msg.role, content: content ?? null };
    if (Array.isArray(msg.tool_calls)) {
      // Qwen's templates read arguments as an object; OpenAI sends them as JSON text
      out.tool_calls = msg.tool_calls.map((tc, j) => {
        const f = isObj(tc) && isObj(tc.function) ? tc.function : undefined;
        if (!f || typeof f.name !== 'string') throw badParam(`messages[${i}].tool_calls[${j}]`, `messages[${i}].tool_calls[${j}] must have function.name`);
        let args: unknown = f.arguments ?? {};
        if (typeof args === 'string') {
          try {
            args = JSON.parse(args || '{}');
          } catch {
            throw badParam(`messages[${i}].tool_calls[${j}].function.arguments`, 'tool call arguments are not valid JSON');
          }
        }
        return { ...tc, function: { name: f.name, arguments: args } };
      });
    }
    return out;
  });
}

/**
 * chat_template_kwargs (vLLM's and llama.cpp's extension): enable_thinking (also a top-level field)
 * switches Qwen3's thinking; other keys reach the template as variables, except those it sets.
 */
export function templateOptions(body: Obj): { enable_thinking?: boolean; template_kwargs: Obj } {
  const kw = body.chat_template_kwargs;
  if (kw !== undefined && !isObj(kw)) throw badParam('chat_template_kwargs', "'chat_template_kwargs' must be an object");
  const reserved = Object.keys(kw ?? {}).find((k) => k !== 'enable_thinking' && RESERVED_TEMPLATE_VARS.has(k));
  if (reserved !== undefined) throw badParam(`chat_template_kwargs.${reserved}`, `chat_template_kwargs may not set '${reserved}': the server sets that template variable itself`);
  const think = kw?.enable_thinking ?? body.enable_thinking;
  if (think !== undefined && typeof think !== 'boolean') throw badParam('chat_template_kwargs.enable_thinking', "'enable_thinking' must be true or false");
  const { enable_thinking: _, ...template_kwargs } = kw ?? {};
  return { enable_thinking: think, template_kwargs };
}
