// Chat templates rendered with @huggingface/jinja under Hugging Face's settings (trim_blocks,
// lstrip_blocks, tojson = json.dumps(x, ensure_ascii=False), raise_exception), which reproduce
// Python Jinja2's renders of the Qwen templates byte for byte.
//
//   renderChat(template, { messages, tools?, addGenerationPrompt?, enableThinking?, bosToken?, eosToken?, extra? })
//   chatTemplateFor(tok) -> { template, fallback }   the model's template, or plain ChatML
//   applyChatTemplate(tok, opts)                      renderChat with the tokenizer's template and tokens
//
// jinja_python.ts gives the library Python's str() / strip / trim semantics where it differs
// (Qwen3.5's template writes tool-call arguments with `|string` and strips with `.lstrip('\n')`).
// Tool-call arguments must be objects, as in transformers: Qwen3.5's template applies `|items`
// to them and raises on a JSON string, as Jinja2 does.
//
// Known limits: numbers are JS numbers, so a float written 1.0 in a tool schema renders as 1
// (Python prints 1.0); integer-like object keys ("1") come first in JS objects; `{{ none }}`
// prints nothing (Jinja2: None) and `'a' ~ true` gives "atrue" (Jinja2: aTrue).
import { Template } from '@huggingface/jinja';
import { fail } from '../errors.js';
import { installPythonSemantics } from './jinja_python.js';
import type { Tokenizer } from './tokenizer.js';

installPythonSemantics();

export interface RenderOptions {
  /** [{role, content, ...}], OpenAI / Hugging Face style */
  messages: unknown;
  /** OpenAI-style tools: [{type: "function", function: {name, description, parameters}}] */
  tools?: unknown;
  /** append the opening of the assistant's turn (Hugging Face default: false) */
  addGenerationPrompt?: boolean;
  /** Qwen3: false asks for no thinking (the template writes an empty <think></think>) */
  enableThinking?: boolean;
  bosToken?: string | null;
  eosToken?: string | null;
  /** further template variables (e.g. add_vision_id) */
  extra?: Record<string, unknown>;
}

/**
 * Plain ChatML, used for a model folder without a template: the format every Qwen chat model
 * uses (transformers' former default_chat_template). It knows nothing of tools or thinking.
 */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const parsed = new Map<string, Template>();

function compile(template: string): Template {
  let t = parsed.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
      fail(`chat template cannot be parsed: ${(e as Error).message}`);
    }
    if (parsed.size > 16) parsed.clear();
    parsed.set(template, t);
  }
  return t;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Check messages have the shape templates expect, so a mistake is named instead of crashing inside the template. */
export function validateMessages(messages: unknown): asserts messages is Record<string, unknown>[] {
  if (!Array.isArray(messages)) fail(`messages must be a JSON array of {role, content} objects, got ${kind(messages)}`);
  // Jinja2 fails on messages[0] of an empty list where @huggingface/jinja renders nothing
  if (messages.length === 0) fail('messages is empty: a conversation needs at least one message');
  messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isObj(m)) fail(`${at} must be an object with "role" and "content", got ${kind(m)}`);
    if (typeof m.role !== 'string') fail(`${at}.role must be a string, got ${kind(m.role)}`);
    const c = m.content;
    if (Array.isArray(c)) {
      c.forEach((p, j) => {
        if (!isObj(p) || typeof p.type !== 'string') fail(`${at}.content[${j}] must be an object with a string "type" (e.g. {"type": "text", "text": "..."})`);
        if (p.type === 'text' && typeof p.text !== 'string') fail(`${at}.content[${j}].text must be a string`);
      });
    } else if (c !== undefined && c !== null && typeof c !== 'string') {
      fail(`${at}.content must be a string, null, or an array of parts, got ${kind(c)}`);
    }
    if (m.reasoning_content !== undefined && m.reasoning_content !== null && typeof m.reasoning_content !== 'string') fail(`${at}.reasoning_content must be a string`);
    if (m.tool_calls !== undefined && m.tool_calls !== null) {
      if (!Array.isArray(m.tool_calls)) fail(`${at}.tool_calls must be an array, got ${kind(m.tool_calls)}`);
      m.tool_calls.forEach((tc, j) => {
        const f = isObj(tc) && isObj(tc.function) ? tc.function : tc;
        if (!isObj(f) || typeof f.name !== 'string') fail(`${at}.tool_calls[${j}] must be {"function": {"name": ..., "arguments": ...}}`);
        if (f.arguments !== undefined && typeof f.arguments !== 'string' && !isObj(f.arguments)) fail(`${at}.tool_calls[${j}] arguments must be an object or a JSON string`);
      });
    }
  });
}

export function validateTools(tools: unknown): void {
  if (tools === undefined || tools === null) return;
  if (!Array.isArray(tools)) fail(`tools must be a JSON array of OpenAI-style tools, got ${kind(tools)}`);
  tools.forEach((t, i) => {
    const f = isObj(t) && isObj(t.function) ? t.function : t;
    if (!isObj(f) || typeof f.name !== 'string') fail(`tools[${i}] must be {"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}`);
  });
}

export function renderChat(template: string, opts: RenderOptions): string {
  validateMessages(opts.messages);
  validateTools(opts.tools);
  const ctx: Record<string, unknown> = {
    ...opts.extra,
    messages: opts.messages,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    bos_token: opts.bosToken ?? null,
    eos_token: opts.eosToken ?? null,
  };
  // Left undefined when not given, as in Hugging Face: templates test `tools is defined`.
  if (opts.tools !== undefined && opts.tools !== null) ctx.tools = opts.tools;
  if (opts.enableThinking !== undefined) ctx.enable_thinking = opts.enableThinking;
  const t = compile(template);
  try {
    return t.render(ctx);
  } catch (e) {
    // raise_exception(msg) arrives here as an Error carrying the template's own message
    fail(`chat template error: ${(e as Error).message}`);
  }
}

/** The model's chat template, or plain ChatML (fallback: true) when it has none. */
export function chatTemplateFor(tok: Tokenizer): { template: string; fallback: boolean } {
  return tok.chatTemplate !== undefined ? { template: tok.chatTemplate, fallback: false } : { template: CHATML_TEMPLATE, fallback: true };
}

/** renderChat with the tokenizer's template and its bos_token / eos_token texts. */
export function applyChatTemplate(tok: Tokenizer, opts: Omit<RenderOptions, 'bosToken' | 'eosToken'>): string {
  return renderChat(chatTemplateFor(tok).template, { ...opts, bosToken: tok.bosToken ?? null, eosToken: tok.eosToken ?? null });
}
