// Forced tool calls in the XML format of Qwen3.5 / Qwen3-Coder chat templates:
//   <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n...</function>\n</tool_call>
// as a byte automaton built from the same nodes as the JSON constraint.
//
// Parameters come in schema order. Required ones are always written; each optional one may be
// written or skipped (the model decides, as with optional JSON properties); nothing else. VALUE
// is what the parser (src/chat/xml_tool_call.ts) types back into a value the schema accepts:
//   string-only schemas   raw text: valid UTF-8, no control bytes but \t \n \r, never containing
//                         `</parameter>`, minLength / maxLength / pattern / format / enum enforced
//                         on the raw text, at most XML_STRING_MAX code points without a maxLength
//   string + null         the raw text, or `null`
//   string + other types  the raw text (not starting like a number / object / array / with
//                         whitespace, so it cannot be read back as one), or JSON of the others
//   no string             JSON valid for the schema (the JSON constraint's compiler)
import { fail, QwenError } from '../../errors.js';
import { finishGraph, Frame, LiteralNode, Node, ObjectNode, RootNode, SeqNode, SIG_HORIZON, UnionNode, utf8Lead } from './automaton.js';
import { FORMATS, regex, type Regex } from './regex.js';
import { Compiler } from './schema.js';
import { alternatives, flatTypes, resolveSchema, schemaTypes, toolParams, type JsonType, type Types } from './tool_params.js';

/** Longest raw string value without a maxLength, in code points (a model that never closes the value stops here). */
export const XML_STRING_MAX = 8192;
const enc = new TextEncoder();
const lit = (...s: string[]) => new LiteralNode(s.map((x) => enc.encode(x)));
const CLOSE = '\n</parameter>\n';
const FORBID = enc.encode('</parameter>');
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const R_IN = 1,
  R_UTF8 = 2;
// bytes a JSON number, object or array may start with (after whitespace, which JSON.parse skips)
const JSON_START = new Set([...'-0123456789[{ \t\n\r'].map((c) => c.charCodeAt(0)));

/**
 * Raw text of at least one byte. Frame: ph = mode (R_IN / R_UTF8) + 4 * (bytes of `</parameter>`
 * matched so far), a = code points, b = packed UTF-8 state (code point bits * 65536 + next byte
 * range), c = continuation bytes still expected, x = regex state.
 */
export class RawTextNode extends Node {
  constructor(
    readonly minLength = 0,
    readonly maxLength = Infinity,
    readonly nfa: Regex | null = null,
    readonly noJsonStart = false,
  ) {
    super();
  }
  enter(up: Frame, b: number, out: Frame[]) {
    if (this.noJsonStart && JSON_START.has(b)) return;
    this.step(new Frame(this, up, R_IN, 0, 0, 0, this.nfa ? this.nfa.start : -1), b, out);
  }
  private char(f: Frame, k: number, cp: number, out: Frame[]) {
    if (f.a >= this.maxLength) return;
    let x = f.x;
    if (this.nfa) {
      x = this.nfa.step(x, cp);
      if (x < 0) return;
    }
    out.push(new Frame(this, f.up, R_IN + 4 * k, f.a + 1, 0, 0, x));
  }
  override step(f: Frame, b: number, out: Frame[]) {
    const k0 = f.ph >> 2,
      k = b === FORBID[k0] ? k0 + 1 : b === FORBID[0] ? 1 : 0;
    if (k === FORBID.length) return;
    if ((f.ph & 3) === R_IN) {
      if (b < 0x20 && b !== 9 && b !== 10 && b !== 13) return;
      if (b < 0x80) {
        this.char(f, k, b, out);
        return;
      }
      if (f.a >= this.maxLength) return;
      const u = utf8Lead(b);
      if (!u) return;
      const { n, lo, hi } = u;
      const cp = this.nfa ? b & (0x3f >> n) : 0;
      const m = 64 ** (n - 1);
      if (this.nfa && !this.nfa.canStepRange(f.x, (cp * 64 + (lo & 0x3f)) * m, (cp * 64 + (hi & 0x3f) + 1) * m - 1)) return;
      out.push(new Frame(this, f.up, R_UTF8 + 4 * k, f.a, cp * 65536 + lo * 256 + hi, n, f.x));
      return;
    }
    const lo = Math.floor(f.b / 256) % 256,
      hi = f.b % 256;
    if (b < lo || b > hi) return;
    const cp = this.nfa ? Math.floor(f.b / 65536) * 64 + (b & 0x3f) : 0;
    if (f.c > 1) {
      const m = 64 ** (f.c - 1);
      if (this.nfa && !this.nfa.canStepRange(f.x, cp * m, (cp + 1) * m - 1)) return;
      out.push(new Frame(this, f.up, R_UTF8 + 4 * k, f.a, cp * 65536 + 0x80bf, f.c - 1, f.x));
    } else this.char(f, k, cp, out);
  }
  override ended(f: Frame) {
    return (f.ph & 3) === R_IN && f.a >= this.minLength && (!this.nfa || this.nfa.acc[f.x]!);
  }
  override rest(f: Frame) {
    const pending = (f.ph & 3) === R_UTF8 ? f.c : 0;
    const chars = Math.max(this.minLength - f.a - (pending ? 1 : 0), 0);
    const re = this.nfa ? Math.max(this.nfa.dist[f.x]! - (pending ? 1 : 0), 0) : 0;
    return pending + Math.max(chars, re);
  }
  override sig(f: Frame) {
    const n = `${this.minLength ? Math.min(f.a, this.minLength) : 0},${this.maxLength < Infinity ? Math.min(this.maxLength - f.a, SIG_HORIZON) : 0}`;
    return `${f.ph},${n},${f.b},${f.c}${this.nfa ? `,${f.x}` : ''}`;
  }
  computeMin() {
    return Math.max(1, this.minLength, this.nfa ? this.nfa.dist[this.nfa.start]! : 0);
  }
}

const union = (alts: Node[]): Node => (alts.length === 1 ? alts[0]! : new UnionNode(alts));

/** Raw string value + CLOSE for one flat schema level (its string keywords). */
function rawValue(s: Obj, noJsonStart: boolean, path: string): Node | undefined {
  const vals = s.const !== undefined ? [s.const] : Array.isArray(s.enum) ? s.enum : undefined;
  if (vals) {
    const strs = (vals.filter((v) => typeof v === 'string') as string[]).filter((v) => !v.includes('</parameter>') && !(noJsonStart && v.length > 0 && JSON_START.has(v.charCodeAt(0))));
    return strs.length ? lit(...strs.map((v) => v + CLOSE)) : undefined;
  }
  const minL = typeof s.minLength === 'number' ? s.minLength : 0;
  const maxL = Math.min(typeof s.maxLength === 'number' ? s.maxLength : XML_STRING_MAX, XML_STRING_MAX);
  const src = typeof s.pattern === 'string' ? s.pattern : typeof s.format === 'string' ? FORMATS[s.format] : undefined;
  const nfa = src !== undefined ? regex(src) : null; // the schema compiled already, so this parses
  if (minL > maxL) fail(`${path}: minLength is above the ${XML_STRING_MAX} characters an XML string value may have`);
  const text = new SeqNode([new RawTextNode(minL, maxL, nfa, noJsonStart), lit(CLOSE)]);
  const emptyOk = minL === 0 && (!nfa || nfa.acc[nfa.start]!);
  return emptyOk ? new UnionNode([text, lit(CLOSE)]) : text;
}

/** The value + CLOSE of a parameter schema (an anyOf alternative, recursively) given the types of the whole parameter. */
function paramValue(c: Compiler, s0: unknown, root: unknown, all: Types, path: string, depth = 0): Node {
  const json = (schema: unknown) => new SeqNode([c.compile(schema, path), lit(CLOSE)]);
  if (all === 'any') return json(s0); // the parser reads JSON first: any JSON value is valid
  const s = resolveSchema(s0, root);
  if (!isObj(s)) return json(s);
  const alts = alternatives(s);
  if (alts && depth < 8) return union(alts.map((a, i) => paramValue(c, a, root, all, `${path}/${i}`, depth + 1)));
  const t = flatTypes(s);
  if (t === 'any' || !all.has('string')) return json(s);
  const out: Node[] = [];
  const others = [...t].filter((x) => x !== 'string') as JsonType[];
  if (t.has('string')) {
    // text that JSON.parse could read as an allowed number / object / array would come back as that
    const risky = [...all].some((x) => x === 'number' || x === 'integer' || x === 'object' || x === 'array');
    const raw = rawValue(s, risky, path);
    if (raw) out.push(raw);
  }
  if (others.length) {
    const narrowed: Obj = { ...s, type: others };
    const keep = (v: unknown) => typeof v !== 'string';
    if (Array.isArray(s.enum)) narrowed.enum = s.enum.filter(keep);
    if (s.const !== undefined && !keep(s.const)) delete narrowed.const;
    delete narrowed.nullable;
    if (!(Array.isArray(narrowed.enum) && narrowed.enum.length === 0)) out.push(json(narrowed));
  }
  if (!out.length) fail(`${path}: no value of this parameter can be written in an XML tool call`);
  return union(out);
}

/** One tool's call: `<function=NAME>\n` params `</function>\n`, the tags around it when textTags. */
function toolSeq(name: string, parameters: unknown, textTags: boolean): Node {
  const schema = parameters ?? { type: 'object', properties: {} };
  const params = toolParams(schema);
  if (!params) fail(`tool ${name}: XML tool calls need parameters to be an object schema with properties`);
  const c = new Compiler(schema);
  const top = c.compile(schema, '#'); // validates the whole schema and is what '#' refs point to
  if (!(top instanceof ObjectNode)) fail(`tool ${name}: XML tool calls need parameters to be an object schema with properties`);
  const values = params.map((p) => paramValue(c, p.schema, schema, schemaTypes(p.schema, schema), `#/properties/${p.name}`));
  c.finish(top); // resolves $refs, min lengths of the compiled parts
  // built back to front: from parameter i on, a required one must come, an optional one may be skipped
  let rest: Node = lit(`</function>\n${textTags ? '</tool_call>' : ''}`);
  for (let i = params.length - 1; i >= 0; i--) {
    const p = params[i]!;
    const one = new SeqNode([lit(`<parameter=${p.name}>\n`), values[i]!, rest]);
    rest = p.required ? one : new UnionNode([one, rest]);
  }
  return new SeqNode([lit(`${textTags ? '<tool_call>' : ''}\n<function=${name}>\n`), rest]);
}

type ToolLike = { function: { name: string; parameters?: object } };

export function xmlToolRoot(tools: ToolLike[], textTags: boolean): RootNode {
  return finishGraph(new RootNode(union(tools.map((t) => toolSeq(t.function.name, t.function.parameters, textTags)))), []);
}

/** Why a tool cannot be forced in the XML format (beyond validateSchema's reasons), else undefined. */
export function xmlToolProblem(t: ToolLike): string | undefined {
  const name = t.function.name;
  if (/[\n<>]/.test(name)) return `function name ${JSON.stringify(name)} cannot be written in an XML tool call`;
  const params = toolParams(t.function.parameters);
  if (!params) return `${name}: XML tool calls need parameters to be an object schema with properties`;
  const bad = params.find((p) => /[\n<>]/.test(p.name) || p.name.trim() !== p.name || p.name === '');
  if (bad) return `${name}: parameter name ${JSON.stringify(bad.name)} cannot be written in an XML tool call`;
  try {
    toolSeq(name, t.function.parameters, true);
  } catch (e) {
    if (e instanceof QwenError) return `${name}: ${e.message}`; // e.g. no value of a parameter fits the format
    throw e;
  }
  return undefined;
}
