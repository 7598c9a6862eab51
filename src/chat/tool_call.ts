// An OpenAI tool call as the chat layer returns it, and the Qwen2.5 / Qwen3 JSON form of one:
// `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>` (the XML form: xml_tool_call.ts).

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text of the arguments object, as OpenAI's wire format carries it */
  arguments: string;
}

let counter = 0;
export function toolCallId(): string {
  return `call_${Date.now().toString(36)}${(counter++).toString(36).padStart(4, '0')}`;
}

/** Parse a JSON tool-call block body; undefined when it is not a valid call. */
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
