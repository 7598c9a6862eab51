// The Responses API's input: a string, or items (messages with text parts, function calls, their
// outputs, reasoning, references to stored items), checked one by one with errors naming
// `input[i]...`, normalised to the item shapes the API returns, and turned into the chat messages
// Qwen's templates read (a function call joins the assistant turn before it; reasoning goes to the
// next assistant turn as reasoning_content).
import { badParam } from './errors.js';
import { isObj } from './openai.js';
import type { ResponseStore } from './response_store.js';

type Obj = Record<string, unknown>;

const ROLES = ['user', 'system', 'developer', 'assistant'];
const ITEM_TYPES = 'message, function_call, function_call_output, reasoning, item_reference';

/** The request's `input` as normalised items (item references resolved from `store`). */
export function inputItems(input: unknown, store: ResponseStore): Obj[] {
  if (typeof input === 'string') return [textMessage('user', input)];
  if (!Array.isArray(input)) throw badParam('input', "'input' must be a string or an array of input items", 'invalid_type');
  return input.map((it, i) => inputItem(it, `input[${i}]`, store));
}

function inputItem(it: unknown, at: string, store: ResponseStore): Obj {
  if (!isObj(it)) throw badParam(at, `${at} must be an object`, 'invalid_type');
  const type = it.type ?? (typeof it.role === 'string' ? 'message' : undefined); // EasyInputMessage has no type
  const str = (field: string, empty = false): string => {
    const v = it[field];
    if (typeof v !== 'string' || (!empty && v === '')) throw badParam(`${at}.${field}`, `${at}.${field} must be a${empty ? '' : ' non-empty'} string`, 'invalid_type');
    return v;
  };
  switch (type) {
    case 'message': {
      const role = it.role;
      if (typeof role !== 'string' || !ROLES.includes(role)) throw badParam(`${at}.role`, `${at}.role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(role)}`);
      const content = messageContent(it.content, `${at}.content`);
      return typeof content === 'string' ? textMessage(role, content) : { type: 'message', role, content };
    }
    case 'function_call': {
      const args = str('arguments', true);
      let parsed: unknown;
      try {
        parsed = JSON.parse(args || '{}');
      } catch {
        throw badParam(`${at}.arguments`, `${at}.arguments is not valid JSON`);
      }
      if (!isObj(parsed)) throw badParam(`${at}.arguments`, `${at}.arguments must be a JSON object`);
      return { type, call_id: str('call_id'), name: str('name'), arguments: args, ...(typeof it.id === 'string' ? { id: it.id } : {}), status: 'completed' };
    }
    case 'function_call_output': {
      const out = it.output;
      const output = typeof out === 'string' ? out : Array.isArray(out) ? partsText(out, `${at}.output`) : undefined;
      if (output === undefined) throw badParam(`${at}.output`, `${at}.output must be a string or an array of input_text parts`, 'invalid_type');
      return { type, call_id: str('call_id'), output };
    }
    case 'reasoning': {
      // the text of our own reasoning items (content), or summaries a client kept; encrypted content is not ours to read
      const parts = [...(Array.isArray(it.content) ? it.content : []), ...(Array.isArray(it.summary) ? it.summary : [])];
      const text = parts.map((p) => (isObj(p) && typeof p.text === 'string' ? p.text : '')).join('');
      return reasoningItem(typeof it.id === 'string' ? it.id : undefined, text);
    }
    case 'item_reference': {
      const found = store.item(str('id'));
      if (!found) throw badParam(`${at}.id`, `Item with id '${it.id}' not found (items of stored responses can be referenced; ${store.describe()})`, 'item_not_found');
      return found;
    }
    default:
      throw badParam(`${at}.type`, `${at}.type ${JSON.stringify(type)} is not supported; supported input items: ${ITEM_TYPES}`, 'unsupported_value');
  }
}

/** A message's content: its text, or (when it holds an image) its input_text / input_image parts, normalised. */
function messageContent(content: unknown, at: string): string | Obj[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badParam(at, `${at} must be a string or an array of text and image parts`, 'invalid_type');
  if (!content.some((p) => isObj(p) && p.type === 'input_image')) return partsText(content, at);
  return content.map((p, j) => (isObj(p) && p.type === 'input_image' ? inputImage(p, `${at}[${j}]`) : { type: 'input_text', text: partsText([p], at, j) }));
}

/** {type: 'input_image', image_url}: a URL or data: URL; file_id names an uploaded file, which this server does not keep. */
function inputImage(p: Obj, at: string): Obj {
  if (typeof p.image_url === 'string' && p.image_url) return { type: 'input_image', image_url: p.image_url, detail: typeof p.detail === 'string' ? p.detail : 'auto' };
  if (p.file_id !== undefined && p.file_id !== null)
    throw badParam(`${at}.file_id`, `${at}.file_id: this server has no file storage; send the image as image_url (https://... or data:image/...;base64,...)`, 'unsupported_value');
  throw badParam(`${at}.image_url`, `${at}.image_url must be a URL or a data:image/...;base64,... URL`, 'invalid_type');
}

// text parts are joined; files and audio need a model that reads them (images: messageContent)
function partsText(parts: unknown[], at: string, first = 0): string {
  return parts
    .map((p, k) => {
      const j = first + k;
      if (isObj(p) && (p.type === 'input_text' || p.type === 'output_text' || p.type === 'text') && typeof p.text === 'string') return p.text;
      if (isObj(p) && p.type === 'refusal' && typeof p.refusal === 'string') return p.refusal;
      throw badParam(`${at}[${j}]`, `${at}[${j}]: only text and image parts (input_text, output_text, input_image) are supported, got ${JSON.stringify(isObj(p) ? p.type : p)}`, 'unsupported_value');
    })
    .join('');
}

export function textMessage(role: string, text: string, id?: string): Obj {
  return {
    type: 'message',
    ...(id ? { id } : {}),
    role,
    content: [{ type: role === 'assistant' ? 'output_text' : 'input_text', text, ...(role === 'assistant' ? { annotations: [] } : {}) }],
    ...(id ? { status: 'completed' } : {}),
  };
}

export function reasoningItem(id: string | undefined, text: string): Obj {
  return { type: 'reasoning', ...(id ? { id } : {}), summary: [], content: [{ type: 'reasoning_text', text }] };
}

const itemText = (it: Obj) => (it.content as Obj[]).map((p) => p.text as string).join('');

/** A message item's content for the template: its text, or text and image parts (images.ts reads their url and param). */
const itemContent = (it: Obj, at: string): string | Obj[] =>
  (it.content as Obj[]).some((p) => p.type === 'input_image')
    ? (it.content as Obj[]).map((p, j) => (p.type === 'input_image' ? { type: 'image', url: p.image_url, param: `${at}.content[${j}].image_url` } : { type: 'text', text: p.text }))
    : itemText(it);

/**
 * Normalised items as chat messages, `instructions` as the system prompt. Items before `firstNew`
 * came from earlier turns; a function_call_output must answer a function_call before it, and
 * errors name the new items by their index in this request's input.
 */
export function itemsToMessages(items: readonly Obj[], instructions: string | undefined, firstNew: number): Obj[] {
  const out: Obj[] = [];
  const calls = new Set<string>();
  let reasoning = '';
  const assistant = (content: string): Obj => {
    const m: Obj = { role: 'assistant', content };
    if (reasoning) m.reasoning_content = reasoning;
    reasoning = '';
    out.push(m);
    return m;
  };
  items.forEach((it, k) => {
    switch (it.type) {
      case 'message':
        if (it.role === 'assistant') assistant(itemText(it));
        else out.push({ role: it.role === 'developer' ? 'system' : it.role, content: itemContent(it, k >= firstNew ? `input[${k - firstNew}]` : 'previous_response_id') });
        break;
      case 'reasoning':
        reasoning += itemText(it);
        break;
      case 'function_call': {
        const last = out[out.length - 1];
        const m = last?.role === 'assistant' && !reasoning ? last : assistant('');
        const call = { id: it.call_id, type: 'function', function: { name: it.name, arguments: JSON.parse((it.arguments as string) || '{}') as unknown } };
        m.tool_calls = [...((m.tool_calls as Obj[] | undefined) ?? []), call];
        calls.add(it.call_id as string);
        break;
      }
      case 'function_call_output': {
        const at = `input[${k - firstNew}].call_id`;
        if (!calls.has(it.call_id as string)) throw badParam(at, `No tool call found for function call output with call_id '${it.call_id}'`);
        out.push({ role: 'tool', tool_call_id: it.call_id, content: it.output });
        break;
      }
    }
  });
  if (instructions) {
    const first = out[0];
    if (first?.role === 'system') first.content = `${instructions}\n\n${first.content as string}`;
    else out.unshift({ role: 'system', content: instructions });
  }
  if (!out.length) throw badParam('input', "'input' has no messages: give a string or input items", 'invalid_value');
  return out;
}
