// Streaming parser for what Qwen models write: `<think>...</think>` reasoning (Qwen3, Qwen3.5),
// tool calls in a `<tool_call>...</tool_call>` block, and plain content. The block body is JSON
// (`{"name": ..., "arguments": {...}}`, Qwen2.5 / Qwen3) or XML (`<function=NAME>` with
// `<parameter=P>` values, Qwen3.5 / Qwen3-Coder): the format is an option, the scanning is shared.
// Text that could be the start of a tag is held back until it is known not to be one, and
// whitespace-only content (the newlines around tags) is only passed on when more text follows.
// A block that does not parse is passed on as the text it was (content, or reasoning if it
// started there), never dropped.
import type { ToolCallFormat } from '../generate/constrain/tool_params.js';
import { parseToolCall, type ToolCall } from './tool_call.js';
import { insideXmlValue, parseXmlToolCall, xmlBodyViable } from './xml_tool_call.js';

export { parseToolCall, toolCallId, type ToolCall } from './tool_call.js';
export type { ToolCallFormat } from '../generate/constrain/tool_params.js';

export type OutputEvent = { kind: 'reasoning'; text: string } | { kind: 'content'; text: string } | { kind: 'tool_call'; call: ToolCall };

export interface ParserOptions {
  /** the prompt already opened a `<think>` block (some templates do) */
  thinking?: boolean;
  /** how tool-call blocks are written (default 'json'); engine.ts picks it from the chat template */
  format?: ToolCallFormat;
  /** the request's OpenAI `tools`: XML parameter values are typed by their schemas */
  tools?: unknown;
}

const TAGS = ['<think>', '</think>', '<tool_call>', '</tool_call>'];
type Mode = 'content' | 'reasoning' | 'tool_call';

export class QwenOutputParser {
  private mode: Mode;
  private buf = ''; // unparsed text (may end in a partial tag)
  private pendingWs = ''; // whitespace held back in the current mode
  private atStart = true; // at the start of the current reasoning / content run
  private toolBody = '';
  private wsBeforeTool = ''; // restored if the block turns out not to be a tool call
  private modeBeforeTool: Mode = 'content'; // likewise
  private readonly format: ToolCallFormat;
  private readonly tools: unknown;

  /** `opts === true` is the old `thinking` flag. */
  constructor(opts: boolean | ParserOptions = {}) {
    const o = typeof opts === 'boolean' ? { thinking: opts } : opts;
    this.mode = o.thinking ? 'reasoning' : 'content';
    this.format = o.format ?? 'json';
    this.tools = o.tools;
  }

  push(text: string): OutputEvent[] {
    this.buf += text;
    const out: OutputEvent[] = [];
    for (;;) {
      const { index, tag } = firstTag(this.buf);
      if (tag === undefined) {
        // keep a possible partial tag at the end
        const keep = partialTagLength(this.buf);
        this.emit(this.buf.slice(0, this.buf.length - keep), out);
        this.buf = this.buf.slice(this.buf.length - keep);
        return out;
      }
      this.emit(this.buf.slice(0, index), out);
      this.buf = this.buf.slice(index + tag.length);
      this.onTag(tag, out);
    }
  }

  /** End of generation: flush what was held back (an unclosed tool call becomes content). */
  finish(): OutputEvent[] {
    const out: OutputEvent[] = [];
    this.emit(this.buf, out);
    this.buf = '';
    if (this.mode === 'tool_call') {
      this.restoreBlock('<tool_call>' + this.toolBody, out);
      this.toolBody = '';
    }
    this.pendingWs = ''; // trailing whitespace is dropped
    return out;
  }

  private onTag(tag: string, out: OutputEvent[]): void {
    // an XML string value may hold `</tool_call>` (the constraint allows it): only a close outside a value ends the block
    const inValue = this.mode === 'tool_call' && this.format === 'xml' && insideXmlValue(this.toolBody);
    if (this.mode === 'tool_call' && (tag !== '</tool_call>' || inValue)) {
      if (!inValue && !this.viable(this.toolBody + tag)) {
        this.abandonBlock(out);
        this.onTag(tag, out); // the tag acts in the mode the block started in
        return;
      }
      this.toolBody += tag;
      return;
    }
    switch (tag) {
      case '<think>':
        if (this.mode === 'content') this.switchTo('reasoning');
        else this.emitText(tag, out);
        break;
      case '</think>':
        if (this.mode === 'reasoning') this.switchTo('content');
        else this.emitText(tag, out);
        break;
      case '<tool_call>':
        // JSON format: a tool call mentioned while thinking stays reasoning. XML (Qwen3.5): a call
        // ends the reasoning, as in llama.cpp's qwen3_coder handler (a forced call right after an
        // opened <think> needs this); if the block does not parse, it goes back to reasoning.
        if (this.mode === 'reasoning' && this.format !== 'xml') this.emitText(tag, out);
        else {
          this.modeBeforeTool = this.mode;
          this.mode = 'tool_call';
          this.toolBody = '';
          this.wsBeforeTool = this.pendingWs;
          this.pendingWs = '';
        }
        break;
      case '</tool_call>': {
        if (this.mode !== 'tool_call') {
          this.emitText(tag, out);
          break;
        }
        const call = this.format === 'xml' ? parseXmlToolCall(this.toolBody, this.tools) : parseToolCall(this.toolBody);
        if (call) {
          this.switchTo('content');
          out.push({ kind: 'tool_call', call });
        } else {
          this.restoreBlock(`<tool_call>${this.toolBody}</tool_call>`, out);
        }
        this.toolBody = '';
        break;
      }
    }
  }

  /** A block that is not a tool call: its text goes where the block started. */
  private restoreBlock(text: string, out: OutputEvent[]): void {
    this.mode = this.modeBeforeTool;
    this.pendingWs = this.wsBeforeTool;
    this.emitText(text, out);
  }

  private switchTo(mode: Mode): void {
    this.mode = mode;
    this.pendingWs = '';
    this.atStart = true;
  }

  private emit(text: string, out: OutputEvent[]): void {
    if (!text) return;
    if (this.mode !== 'tool_call') return this.emitText(text, out);
    this.toolBody += text;
    if (!this.viable(this.toolBody)) this.abandonBlock(out);
  }

  /** A body that cannot become a call (e.g. `<tool_call>` mentioned in prose) is passed on at once. */
  private viable(body: string): boolean {
    if (this.format === 'xml') return xmlBodyViable(body);
    const t = body.trimStart();
    return t === '' || t.startsWith('{');
  }

  private abandonBlock(out: OutputEvent[]): void {
    const body = this.toolBody;
    this.toolBody = '';
    this.restoreBlock('<tool_call>' + body, out);
  }

  private emitText(text: string, out: OutputEvent[]): void {
    const kind = this.mode === 'reasoning' ? 'reasoning' : 'content';
    let t = this.pendingWs + text;
    if (this.atStart) t = t.replace(/^\s+/, ''); // the newlines after a tag
    const trail = /\s*$/.exec(t)![0];
    this.pendingWs = trail;
    t = t.slice(0, t.length - trail.length);
    if (!t) return;
    this.atStart = false;
    const last = out[out.length - 1];
    if (last && last.kind === kind) last.text += t;
    else out.push({ kind, text: t });
  }
}

function firstTag(s: string): { index: number; tag?: string } {
  let best = -1,
    tag: string | undefined;
  for (const t of TAGS) {
    const i = s.indexOf(t);
    if (i >= 0 && (best < 0 || i < best)) {
      best = i;
      tag = t;
    }
  }
  return { index: best, tag };
}

function partialTagLength(s: string): number {
  for (let k = Math.min(s.length, 11); k > 0; k--) {
    const tail = s.slice(s.length - k);
    if (TAGS.some((t) => t.startsWith(tail))) return k;
  }
  return 0;
}
