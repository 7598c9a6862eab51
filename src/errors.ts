// A user-facing error: the CLI prints its message (no stack) and exits non-zero.
// Messages name the file and the tensor / field / parameter at fault.
//
// Names and values in messages often come from the file or request at fault, which may be
// hostile: `quote` escapes control characters (terminal escapes, newlines, bidi overrides) and
// cuts long values, and the constructor applies the same escaping (newlines kept, for help
// text) and a length cap to the whole message as a last line of defence.
export class QwenError extends Error {
  constructor(message: string) {
    super(sanitize(message));
    this.name = 'QwenError';
  }
}

export function fail(message: string): never {
  throw new QwenError(message);
}

/** Longest message a QwenError keeps; the rest is cut with "…". */
export const MAX_MESSAGE = 2000;

// C0 controls, DEL, C1 controls, and the Unicode bidi / line separators that reorder or split text
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\t') return '\\t';
  if (c === '\r') return '\\r';
  const n = c.charCodeAt(0);
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** Cut a string to at most `max` characters (UTF-16 units, never splitting a pair), marking the cut. */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max - 1;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // do not leave half a surrogate pair
  return `${s.slice(0, end)}… (${s.length} characters)`;
}

/**
 * A value from a file or request, safe to put in a message: in single quotes, control characters
 * escaped, cut after `max` characters. Numbers, booleans and null stay bare; objects are JSON.
 */
export function quote(value: unknown, max = 120): string {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || value == null) return String(value);
  return `'${printable(typeof value === 'string' ? value : safeJson(value), max)}'`;
}

/** A string from a file, a server or a request, with control characters escaped and cut after `max`. */
export function printable(s: string, max = 200): string {
  return cut(s, max).replace(CONTROL, escapeChar);
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Escape control characters except newlines and cap the length of a whole message. */
export function sanitize(message: string): string {
  return cut(message, MAX_MESSAGE).replace(CONTROL_BUT_NEWLINE, escapeChar);
}
