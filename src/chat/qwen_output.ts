// Streaming parser for what Qwen models write: `<think>...</think>` reasoning (Qwen3),
// `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>` blocks, and plain content.
// Text that could be the start of a tag is held back until it is known not to be one, and
// whitespace-only content (the newlines around tags) is only passed on when more text follows.

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text of the arguments object, as OpenAI's wire format carries it */
  arguments: string;
}

export type OutputEvent =
  | { kind: 'reasoning'; text: string }
  | { kind: 'content'; text: string }
  | { kind: 'tool_call'; call: ToolCall };

const TAGS = ['<think>', '</think>', '<tool_call>', '</tool_call>'];
type Mode = 'content' | 'reasoning' | 'tool_call';

let counter = 0;
export function toolCallId(): string {
  return `call_${Date.now().toString(36)}${(counter++).toString(36).padStart(4, '0')}`;
}

/** Parse a tool-call block body; undefined when it is not a valid call. */
export function parseToolCall(body: string): ToolCall | undefined {
  try {
    const v = JSON.parse(body.trim()) as { name?: unknown; arguments?: unknown; parameters?: unknown };
    const args = v.arguments ?? v.parameters ?? {};
    if (typeof v.name !== 'string' || typeof args !== 'object' || args === null || Array.isArray(args)) return undefined;
    return { id: toolCallId(), name: v.name, arguments: JSON.stringify(args) };
  } catch {
    return undefined;
  }
}

export class QwenOutputParser {
  private mode: Mode;
  private buf = ''; // unparsed text (may end in a partial tag)
  private pendingWs = ''; // whitespace held back in the current mode
  private atStart = true; // at the start of the current reasoning / content run
  private toolBody = '';
  private wsBeforeTool = ''; // restored if the block turns out not to be a tool call

  /** `thinking`: the prompt already opened a `<think>` block (some templates do). */
  constructor(thinking = false) {
    this.mode = thinking ? 'reasoning' : 'content';
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
      this.mode = 'content';
      this.pendingWs = this.wsBeforeTool;
      this.emitText('<tool_call>' + this.toolBody, out);
      this.toolBody = '';
    }
    this.pendingWs = ''; // trailing whitespace is dropped
    return out;
  }

  private onTag(tag: string, out: OutputEvent[]): void {
    if (this.mode === 'tool_call' && tag !== '</tool_call>') {
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
        if (this.mode === 'reasoning') this.emitText(tag, out); // a tool call mentioned while thinking
        else { this.mode = 'tool_call'; this.toolBody = ''; this.wsBeforeTool = this.pendingWs; this.pendingWs = ''; }
        break;
      case '</tool_call>': {
        if (this.mode !== 'tool_call') { this.emitText(tag, out); break; }
        const call = parseToolCall(this.toolBody);
        if (call) {
          this.switchTo('content');
          out.push({ kind: 'tool_call', call });
        } else {
          this.mode = 'content';
          this.pendingWs = this.wsBeforeTool;
          this.emitText(`<tool_call>${this.toolBody}</tool_call>`, out);
        }
        this.toolBody = '';
        break;
      }
    }
  }

  private switchTo(mode: Mode): void {
    this.mode = mode;
    this.pendingWs = '';
    this.atStart = true;
  }

  private emit(text: string, out: OutputEvent[]): void {
    if (!text) return;
    if (this.mode === 'tool_call') this.toolBody += text;
    else this.emitText(text, out);
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
  let best = -1, tag: string | undefined;
  for (const t of TAGS) {
    const i = s.indexOf(t);
    if (i >= 0 && (best < 0 || i < best)) { best = i; tag = t; }
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
