// A response's output items built from the chat engine's events, and the streaming events that
// describe them, in the Responses API's order: each item is added, its content part added, its
// text streamed as deltas, then done (text, part, item); a function call's arguments arrive as a
// delta and a done. The non-streamed answer is built by the same code with the events dropped,
// so both carry the same items.
import { randomUUID } from 'node:crypto';
import type { ChatEvent } from '../chat/engine.js';
import { logprobEntry } from './chat_completions.js';
import { reasoningItem, textMessage } from './response_input.js';

type Obj = Record<string, unknown>;

export const newId = (prefix: string) => `${prefix}_${randomUUID().replace(/-/g, '')}`;

interface OpenItem {
  kind: 'reasoning' | 'content';
  id: string;
  index: number;
  text: string;
  logprobs: Obj[];
}

export class OutputBuilder {
  readonly output: Obj[] = [];
  private open?: OpenItem;
  private pendingLogprobs: Obj[] = []; // the logprobs of tokens whose text has not come out yet
  reasoningText = '';

  /** `emit(type, fields)`: a streaming event (a no-op when not streaming). */
  constructor(private readonly emit: (type: string, fields: Obj) => void) {}

  push(e: ChatEvent): void {
    if (e.kind === 'logprobs') return void this.pendingLogprobs.push(logprobEntry(e));
    if (e.kind === 'tool_call') {
      this.close('completed');
      this.pendingLogprobs = [];
      const item = { id: newId('fc'), type: 'function_call', status: 'in_progress', arguments: '', call_id: e.call.id, name: e.call.name };
      const output_index = this.output.length;
      this.output.push(item);
      this.emit('response.output_item.added', { output_index, item: { ...item } });
      this.emit('response.function_call_arguments.delta', { item_id: item.id, output_index, delta: e.call.arguments });
      Object.assign(item, { arguments: e.call.arguments, status: 'completed' });
      this.emit('response.function_call_arguments.done', { item_id: item.id, output_index, name: item.name, arguments: item.arguments });
      this.emit('response.output_item.done', { output_index, item });
      return;
    }
    if (this.open?.kind !== e.kind) this.start(e.kind);
    const o = this.open!;
    o.text += e.text;
    if (o.kind === 'reasoning') {
      this.reasoningText += e.text;
      this.pendingLogprobs = []; // only the answer's tokens are reported
      return this.emit('response.reasoning_text.delta', { item_id: o.id, output_index: o.index, content_index: 0, delta: e.text });
    }
    const logprobs = this.pendingLogprobs;
    this.pendingLogprobs = [];
    o.logprobs.push(...logprobs);
    this.emit('response.output_text.delta', { item_id: o.id, output_index: o.index, content_index: 0, delta: e.text, logprobs });
  }

  /** The end of generation: the open item is done ('incomplete' when the token limit cut it). */
  finish(status: 'completed' | 'incomplete'): void {
    if (this.open?.kind === 'content') this.open.logprobs.push(...this.pendingLogprobs);
    this.close(status);
  }

  private start(kind: OpenItem['kind']): void {
    this.close('completed');
    const o: OpenItem = { kind, id: newId(kind === 'reasoning' ? 'rs' : 'msg'), index: this.output.length, text: '', logprobs: [] };
    this.open = o;
    const item = kind === 'reasoning' ? { ...reasoningItem(o.id, ''), content: [] } : { ...textMessage('assistant', '', o.id), status: 'in_progress', content: [] };
    this.output.push(item);
    this.emit('response.output_item.added', { output_index: o.index, item });
    this.emit('response.content_part.added', { item_id: o.id, output_index: o.index, content_index: 0, part: this.part(o, '') });
  }

  private part(o: OpenItem, text: string): Obj {
    return o.kind === 'reasoning' ? { type: 'reasoning_text', text } : { type: 'output_text', text, annotations: [], logprobs: text ? o.logprobs : [] };
  }

  private close(status: 'completed' | 'incomplete'): void {
    const o = this.open;
    if (!o) return;
    this.open = undefined;
    const at = { item_id: o.id, output_index: o.index, content_index: 0 };
    const part = this.part(o, o.text);
    if (o.kind === 'reasoning') this.emit('response.reasoning_text.done', { ...at, text: o.text });
    else this.emit('response.output_text.done', { ...at, text: o.text, logprobs: o.logprobs });
    this.emit('response.content_part.done', { ...at, part });
    const item = o.kind === 'reasoning' ? reasoningItem(o.id, o.text) : { ...textMessage('assistant', o.text, o.id), status, content: [part] };
    this.output[o.index] = item;
    this.emit('response.output_item.done', { output_index: o.index, item });
  }
}
