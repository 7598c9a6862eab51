// Qwen3.5 / Qwen3-Coder tool calls: the body of a <tool_call> block in XML,
//   <function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n...</function>\n
// parsed into an OpenAI tool call whose arguments are typed by the tool's JSON schema (rules in
// src/generate/constrain/tool_params.ts). The newline after `<parameter=P>` and the one before
// `</parameter>` belong to the format and are removed; anything else in a value is kept as is.
import { jsonTypeOf, paramTypes, type Types } from '../generate/constrain/tool_params.js';
import { toolCallId, type ToolCall } from './tool_call.js';

const FN_OPEN = '<function=',
  FN_CLOSE = '</function>',
  P_OPEN = '<parameter=',
  P_CLOSE = '</parameter>';

type Tool = { type?: unknown; function?: { name?: unknown; parameters?: unknown } };

/** The `parameters` schema of the named tool; undefined when it is not among `tools`. */
function schemaOf(tools: unknown, name: string): { known: boolean; parameters: unknown } {
  const t = Array.isArray(tools) ? (tools as Tool[]).find((x) => x?.function?.name === name) : undefined;
  return { known: t !== undefined, parameters: t?.function?.parameters };
}

// the chat template prints past calls' values with Jinja's `string` filter: Python spellings
const PYTHON: Record<string, unknown> = { True: true, False: false, None: null };

/** JSON text, or a Python literal the template may have taught the model; undefined if neither. */
function parseJsonish(text: string): { v: unknown } | undefined {
  const t = text.trim();
  if (t in PYTHON) return { v: PYTHON[t] };
  try {
    return { v: JSON.parse(t) };
  } catch {
    return undefined;
  }
}

/** A parameter's text typed by its schema types. */
export function typeValue(text: string, types: Types): unknown {
  if (types !== 'any' && types.size === 1 && types.has('string')) return text;
  const p = parseJsonish(text);
  if (!p) return text;
  const v = p.v;
  if (types === 'any') return v;
  const t = jsonTypeOf(v);
  const allowed = types.has(t) || (t === 'integer' && types.has('number'));
  if (types.has('string')) return allowed && t !== 'string' ? v : text; // a quoted string stays raw, as llama.cpp
  return v; // no string allowed: the JSON value as written, even of another type
}

const isNameChar = (s: string) => s.length > 0 && !/[\n<>]/.test(s);

/** Parse a tool-call block body; undefined when it is not a well-formed XML call. */
export function parseXmlToolCall(body: string, tools?: unknown): ToolCall | undefined {
  let i = skipWs(body, 0);
  if (!body.startsWith(FN_OPEN, i)) return undefined;
  const nameEnd = body.indexOf('>', i + FN_OPEN.length);
  if (nameEnd < 0) return undefined;
  const name = body.slice(i + FN_OPEN.length, nameEnd).trim();
  if (!isNameChar(name)) return undefined;
  const { known, parameters } = schemaOf(tools, name);
  const args: Record<string, unknown> = {};
  i = nameEnd + 1;
  for (;;) {
    i = skipWs(body, i);
    if (body.startsWith(FN_CLOSE, i)) {
      i += FN_CLOSE.length;
      break;
    }
    if (!body.startsWith(P_OPEN, i)) return undefined;
    const pEnd = body.indexOf('>', i + P_OPEN.length);
    if (pEnd < 0) return undefined;
    const pname = body.slice(i + P_OPEN.length, pEnd).trim();
    if (!isNameChar(pname)) return undefined;
    const types: Types = known ? paramTypes(parameters, pname) : new Set(['string']);
    const r = readValue(body, pEnd + 1, types);
    if (!r) return undefined;
    args[pname] = r.value;
    i = r.end;
  }
  if (body.slice(i).trim() !== '') return undefined; // text after </function>
  return { id: toolCallId(), name, arguments: JSON.stringify(args) };
}

/**
 * The value starting at `from`, up to a `</parameter>`: the first one, except that a JSON-typed
 * value may run past one that sits inside a JSON string (the first close after which it parses).
 */
function readValue(body: string, from: number, types: Types): { value: unknown; end: number } | undefined {
  const raw = (close: number) => {
    let s = body.slice(from, close);
    if (s.startsWith('\n')) s = s.slice(1);
    if (s.endsWith('\n')) s = s.slice(0, -1);
    return s;
  };
  const first = body.indexOf(P_CLOSE, from);
  if (first < 0) return undefined;
  const stringOnly = types !== 'any' && types.size === 1 && types.has('string');
  if (!stringOnly) {
    for (let c = first; c >= 0; c = body.indexOf(P_CLOSE, c + 1)) {
      if (parseJsonish(raw(c))) return { value: typeValue(raw(c), types), end: c + P_CLOSE.length };
    }
  }
  return { value: typeValue(raw(first), types), end: first + P_CLOSE.length };
}

function skipWs(s: string, i: number): number {
  while (i < s.length && /\s/.test(s[i]!)) i++;
  return i;
}

/** Inside an unclosed `<parameter=...>`: a `</tool_call>` there is part of the value, not the end. */
export function insideXmlValue(body: string): boolean {
  return body.lastIndexOf(P_OPEN) > body.lastIndexOf(P_CLOSE);
}

/** Whether a block body so far can still become an XML call (else it is text, passed on at once). */
export function xmlBodyViable(body: string): boolean {
  const t = body.trimStart();
  return t.length < FN_OPEN.length ? FN_OPEN.startsWith(t) : t.startsWith(FN_OPEN);
}
