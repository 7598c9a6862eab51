// biome-ignore-all format: a state machine written one transition per line; the formatter would spread it over 730 lines
// Byte-level pushdown automaton for JSON constrained by a compiled schema.
// A parse state is a persistent stack of immutable Frames (top first, `up` = parent), so a state is
// shared, never copied, when the token trie is explored. Nondeterminism (anyOf, a number that may
// end or go on, enum literals sharing a prefix) is a set of stacks: `advance` appends every
// surviving successor stack to `out`.
//
// Whitespace: at most one space after ':' and ',' and none elsewhere, so no model can stall in
// whitespace. Every frame knows `rest`: the fewest bytes that complete it, which the token layer
// uses to force closure when max_tokens runs short.
import type { Regex } from './regex.js';


/** A UTF-8 lead byte: how many continuation bytes follow and the range of the first (RFC 3629:
 * E0 and F0 exclude overlong forms, ED surrogates, F4 code points past U+10FFFF); undefined if b
 * cannot start a character. */
export function utf8Lead(b: number): { n: number; lo: number; hi: number } | undefined {
  if (b >= 0xc2 && b <= 0xdf) return { n: 1, lo: 0x80, hi: 0xbf };
  if (b >= 0xe0 && b <= 0xef) return { n: 2, lo: b === 0xe0 ? 0xa0 : 0x80, hi: b === 0xed ? 0x9f : 0xbf };
  if (b >= 0xf0 && b <= 0xf4) return { n: 3, lo: b === 0xf0 ? 0x90 : 0x80, hi: b === 0xf4 ? 0x8f : 0xbf };
  return undefined;
}

export class Frame {
  readonly depth: number;
  constructor(
    readonly node: Node, readonly up: Frame | null, readonly ph: number,
    // biome-ignore lint/suspicious/noExplicitAny: per-node scratch (a string, a set of keys, a sub-frame), typed where read
    readonly a = 0, readonly b = 0, readonly c = 0, readonly x: any = null,
  ) { this.depth = up ? up.depth + 1 : 0; }
}

/** Counters further than this from a bound behave alike for one token (longer than any token). */
export let SIG_HORIZON = 512;
export function setSigHorizon(n: number) { SIG_HORIZON = Math.max(SIG_HORIZON, n + 1); }
const clampSig = (v: number) => (v > SIG_HORIZON ? SIG_HORIZON : v);

let nextId = 0;
export abstract class Node {
  readonly id = nextId++;
  /** fewest bytes of any value of this node (fixpoint over recursive $refs, see compile) */
  minLen = Infinity;
  /** Start a value of this node whose first byte is b, below parent `up`. */
  abstract enter(up: Frame, b: number, out: Frame[]): void;
  abstract computeMin(): number;
  step(_f: Frame, _b: number, _out: Frame[]): void {}
  ended(_f: Frame): boolean { return false; }
  /** the parent frame once its active child has ended */
  after(f: Frame, _child: Frame): Frame { return f; }
  rest(_f: Frame): number { return 0; }
  sig(f: Frame): string { return `${f.ph},${f.a},${f.b},${f.c}`; }
}

/** Feed one byte to a stack. */
export function advance(f: Frame, b: number, out: Frame[]): void {
  f.node.step(f, b, out);
  // a value that may end here passes the byte on to its parent (e.g. the ',' after a number)
  if (f.up && f.node.ended(f)) advance(f.up.node.after(f.up, f), b, out);
}

export function isComplete(f: Frame): boolean {
  for (;;) {
    if (!f.node.ended(f)) return false;
    if (!f.up) return true;
    f = f.up.node.after(f.up, f);
  }
}

/** Fewest bytes that complete the whole document from this stack. */
export function minRemaining(f: Frame | null): number {
  let n = 0;
  for (; f; f = f.up) n += f.node.rest(f);
  return n;
}

export function stackSig(f: Frame | null): string {
  let s = '';
  for (; f; f = f.up) s += `${f.node.id}:${f.node.sig(f)};`;
  return s;
}

const Q = 34, BS = 92, COLON = 58, COMMA = 44, SP = 32;

/** The document: one value, then nothing. */
export class RootNode extends Node {
  constructor(public child: Node) { super(); }
  start(): Frame { return new Frame(this, null, 0); }
  enter(): void { throw new Error('root has no parent'); }
  computeMin() { return this.child.minLen; }
  override step(f: Frame, b: number, out: Frame[]) { if (f.ph === 0) this.child.enter(new Frame(this, null, 1), b, out); }
  override after(f: Frame) { return new Frame(this, f.up, 2); }
  override ended(f: Frame) { return f.ph === 2; }
  override rest(f: Frame) { return f.ph === 0 ? this.child.minLen : 0; }
}

/** anyOf / oneOf / type arrays: every alternative is tried; `maxDepth` stops `any` nesting forever. */
export class UnionNode extends Node {
  constructor(public alts: Node[], public containerDepthLimit = Infinity) { super(); }
  enter(up: Frame, b: number, out: Frame[]) {
    for (const a of this.alts) {
      if (up.depth >= this.containerDepthLimit && (a instanceof ObjectNode || a instanceof ArrayNode)) continue;
      a.enter(up, b, out);
    }
  }
  computeMin() { return Math.min(...this.alts.map((a) => a.minLen)); }
}

/** A $ref, resolved once everything is compiled (schemas may be recursive). */
export class RefNode extends Node {
  target: Node | null = null;
  constructor(readonly ref: string) { super(); }
  enter(up: Frame, b: number, out: Frame[]) { this.target!.enter(up, b, out); }
  computeMin() { return this.target!.minLen; }
}

/** A finite set of exact byte strings: enum, const, true/false/null, fixed text. */
export class LiteralNode extends Node {
  constructor(readonly lits: Uint8Array[]) { super(); }
  enter(up: Frame, b: number, out: Frame[]) {
    const x: number[] = [];
    for (let i = 0; i < this.lits.length; i++) if (this.lits[i]![0] === b) x.push(i);
    if (x.length) out.push(new Frame(this, up, 0, 1, 0, 0, x));
  }
  override step(f: Frame, b: number, out: Frame[]) {
    const x: number[] = [];
    for (const i of f.x as number[]) if (this.lits[i]![f.a] === b) x.push(i);
    if (x.length) out.push(new Frame(this, f.up, 0, f.a + 1, 0, 0, x));
  }
  override ended(f: Frame) { for (const i of f.x as number[]) if (this.lits[i]!.length === f.a) return true; return false; }
  override rest(f: Frame) { let m = Infinity; for (const i of f.x as number[]) m = Math.min(m, this.lits[i]!.length - f.a); return m; }
  override sig(f: Frame) { return `${f.a},${(f.x as number[]).join('.')}`; }
  computeMin() { return Math.min(...this.lits.map((l) => l.length)); }
}

/** A fixed sequence of values (the tool-call envelope): ph 2i = before part i, 2i+1 = inside it. */
export class SeqNode extends Node {
  constructor(readonly parts: Node[]) { super(); }
  enter(up: Frame, b: number, out: Frame[]) { this.step(new Frame(this, up, 0), b, out); }
  override step(f: Frame, b: number, out: Frame[]) {
    if (f.ph % 2 === 0 && f.ph < 2 * this.parts.length) this.parts[f.ph / 2]!.enter(new Frame(this, f.up, f.ph + 1), b, out);
  }
  override after(f: Frame) { return new Frame(this, f.up, f.ph + 1); }
  override ended(f: Frame) { return f.ph === 2 * this.parts.length; }
  override rest(f: Frame) { let n = 0; for (let i = (f.ph + 1) >> 1; i < this.parts.length; i++) n += this.parts[i]!.minLen; return n; }
  computeMin() { return this.parts.reduce((s, p) => s + p.minLen, 0); }
}

export interface Prop { name: string; key: Uint8Array; node: Node; required: boolean }

// object phases
const O_OPEN = 0, O_KEY = 1, O_FREEKEY = 2, O_COLON = 3, O_SP = 4, O_VAL0 = 5, O_INVAL = 6, O_AFTER = 7, O_COMMA = 8, O_COMMA_SP = 9, O_END = 10;

/**
 * An object. Listed properties come in schema order (any optional one may be skipped, required ones
 * may not) and nothing else; without listed properties, `free` gives the value schema of any key.
 * Frame: a = index of the next listed property allowed, b = current property, c = bytes of the key
 * matched so far, x = candidate property indices while a key is being read.
 */
export class ObjectNode extends Node {
  props: Prop[] = [];
  free: { key: StringNode; value: Node } | null = null;
  private cands: number[][] = [];
  private closeOk: boolean[] = [];
  private reqCost: number[] = [];
  private reqCnt: number[] = [];
  /** call once props/free are set */
  finish() {
    const n = this.props.length;
    for (let i = 0; i <= n; i++) {
      const c: number[] = [];
      for (let j = i; j < n; j++) { c.push(j); if (this.props[j]!.required) break; }
      this.cands.push(c);
      this.closeOk.push(!this.props.slice(i).some((p) => p.required));
    }
  }
  computeMin() {
    const n = this.props.length;
    this.reqCost = new Array(n + 1).fill(0); this.reqCnt = new Array(n + 1).fill(0);
    for (let i = n - 1; i >= 0; i--) {
      const p = this.props[i]!;
      this.reqCost[i] = this.reqCost[i + 1]! + (p.required ? p.key.length + 1 + p.node.minLen : 0);
      this.reqCnt[i] = this.reqCnt[i + 1]! + (p.required ? 1 : 0);
    }
    return 1 + this.reqCost[0]! + Math.max(this.reqCnt[0]!, 1);
  }
  /** bytes after the value of property i-1 ends: required ones from i, their commas, '}' */
  private tail(i: number) { return this.reqCost[i]! + this.reqCnt[i]! + 1; }
  private keyCost(j: number) { const p = this.props[j]!; return p.key.length + 1 + p.node.minLen + this.tail(j + 1); }
  enter(up: Frame, b: number, out: Frame[]) { if (b === 123) out.push(new Frame(this, up, O_OPEN)); }
  private key(f: Frame, b: number, out: Frame[]) {
    if (b !== Q) return;
    if (this.free) this.free.key.enter(new Frame(this, f.up, O_FREEKEY, f.a), b, out);
    else if (this.cands[f.a]!.length) out.push(new Frame(this, f.up, O_KEY, f.a, 0, 1, this.cands[f.a]));
  }
  override step(f: Frame, b: number, out: Frame[]) {
    switch (f.ph) {
      case O_OPEN: if (b === 125 && this.canClose(f)) out.push(new Frame(this, f.up, O_END)); else this.key(f, b, out); return;
      case O_COMMA: if (b === SP) out.push(new Frame(this, f.up, O_COMMA_SP, f.a)); else this.key(f, b, out); return;
      case O_COMMA_SP: this.key(f, b, out); return;
      case O_KEY: {
        const x: number[] = [];
        for (const j of f.x as number[]) if (this.props[j]!.key[f.c] === b) x.push(j);
        if (!x.length) return;
        const done = x.find((j) => this.props[j]!.key.length === f.c + 1);
        // keys are quoted, so a complete key is never the prefix of another
        if (done !== undefined) out.push(new Frame(this, f.up, O_COLON, f.a, done));
        else out.push(new Frame(this, f.up, O_KEY, f.a, 0, f.c + 1, x));
        return;
      }
      case O_COLON: if (b === COLON) out.push(new Frame(this, f.up, O_SP, f.a, f.b)); return;
      case O_SP: case O_VAL0:
        if (b === SP && f.ph === O_SP) out.push(new Frame(this, f.up, O_VAL0, f.a, f.b));
        else this.valueNode(f.b).enter(new Frame(this, f.up, O_INVAL, f.a, f.b), b, out);
        return;
      case O_AFTER:
        if (b === COMMA && (this.free || this.cands[f.a]!.length)) out.push(new Frame(this, f.up, O_COMMA, f.a));
        else if (b === 125 && this.canClose(f)) out.push(new Frame(this, f.up, O_END));
        return;
    }
  }
  private canClose(f: Frame) { return this.free !== null || this.closeOk[f.a]!; }
  private valueNode(j: number) { return j < 0 ? this.free!.value : this.props[j]!.node; }
  override after(f: Frame) {
    if (f.ph === O_FREEKEY) return new Frame(this, f.up, O_COLON, f.a, -1);
    return new Frame(this, f.up, O_AFTER, f.b < 0 ? f.a : f.b + 1);
  }
  override ended(f: Frame) { return f.ph === O_END; }
  override rest(f: Frame): number {
    if (this.free) {
      const v = this.free.value.minLen;
      switch (f.ph) {
        case O_OPEN: case O_AFTER: return 1;
        case O_COMMA: case O_COMMA_SP: return 4 + v;
        case O_FREEKEY: case O_COLON: return 2 + v;
        case O_SP: case O_VAL0: return 1 + v;
        case O_INVAL: return 1;
        default: return 0;
      }
    }
    switch (f.ph) {
      case O_OPEN: return this.reqCnt[f.a] ? this.reqCost[f.a]! + this.reqCnt[f.a]! : 1;
      case O_AFTER: return this.tail(f.a);
      case O_COMMA: case O_COMMA_SP: return Math.min(...this.cands[f.a]!.map((j) => this.keyCost(j)));
      case O_KEY: return Math.min(...(f.x as number[]).map((j) => this.keyCost(j) - f.c));
      case O_COLON: return 1 + this.props[f.b]!.node.minLen + this.tail(f.b + 1);
      case O_SP: case O_VAL0: return this.props[f.b]!.node.minLen + this.tail(f.b + 1);
      case O_INVAL: return this.tail(f.b + 1);
      default: return 0;
    }
  }
  override sig(f: Frame) { return `${f.ph},${f.a},${f.b},${f.c}`; }
}

const A_OPEN = 0, A_IN = 1, A_AFTER = 2, A_COMMA = 3, A_COMMA_SP = 4, A_END = 5;

/** An array of `items`; frame a = items completed (or, while inside one, before it). */
export class ArrayNode extends Node {
  constructor(public items: Node | null, public minItems = 0, public maxItems = Infinity) { super(); }
  enter(up: Frame, b: number, out: Frame[]) { if (b === 91) out.push(new Frame(this, up, A_OPEN)); }
  private item(f: Frame, b: number, out: Frame[]) {
    if (this.items && f.a < this.maxItems) this.items.enter(new Frame(this, f.up, A_IN, f.a), b, out);
  }
  override step(f: Frame, b: number, out: Frame[]) {
    switch (f.ph) {
      case A_OPEN: if (b === 93 && this.minItems === 0) out.push(new Frame(this, f.up, A_END, 0)); else this.item(f, b, out); return;
      case A_AFTER:
        if (b === COMMA && f.a < this.maxItems && this.items) out.push(new Frame(this, f.up, A_COMMA, f.a));
        else if (b === 93 && f.a >= this.minItems) out.push(new Frame(this, f.up, A_END, f.a));
        return;
      case A_COMMA: if (b === SP) { out.push(new Frame(this, f.up, A_COMMA_SP, f.a)); return; } this.item(f, b, out); return;
      case A_COMMA_SP: this.item(f, b, out); return;
    }
  }
  override after(f: Frame) { return new Frame(this, f.up, A_AFTER, f.a + 1); }
  override ended(f: Frame) { return f.ph === A_END; }
  override rest(f: Frame) {
    const m = this.items?.minLen ?? 0, need = (k: number) => Math.max(this.minItems - k, 0) * (m + 1);
    switch (f.ph) {
      case A_OPEN: return this.minItems ? this.minItems * (m + 1) : 1;
      case A_IN: return need(f.a + 1) + 1;
      case A_AFTER: return need(f.a) + 1;
      case A_COMMA: case A_COMMA_SP: return m + need(f.a + 1) + 1;
      default: return 0;
    }
  }
  override sig(f: Frame) { return `${f.ph},${Math.min(f.a, this.minItems)},${clampSig(this.maxItems - f.a)}`; }
  computeMin() { return this.minItems ? this.minItems * ((this.items?.minLen ?? Infinity) + 1) + 1 : 2; }
}

export const S_IN = 1, S_UTF8 = 4;
const S_ESC = 2, S_U = 3, S_END = 5;
const ESCAPES: Record<number, number> = { 34: 34, 92: 92, 47: 47, 98: 8, 102: 12, 110: 10, 114: 13, 116: 9 };
const SIMPLE_ESCAPES = Object.values(ESCAPES);

/**
 * A string: valid UTF-8 only (continuation bytes are range-checked, so the text always decodes),
 * escapes, length in code points, optional regex (pattern / format) over code points. \u escapes
 * of surrogates are refused so every escape is one code point. Frame: a = code points so far,
 * b = code point being assembled, c = bytes (UTF-8) or hex digits (\u) still expected,
 * x = regex (lazy DFA) state. While assembling UTF-8, b packs the allowed range of the next byte.
 */
export class StringNode extends Node {
  constructor(public minLength = 0, public maxLength = Infinity, public nfa: Regex | null = null) { super(); }
  enter(up: Frame, b: number, out: Frame[]) { if (b === Q) out.push(new Frame(this, up, S_IN, 0, 0, 0, this.nfa ? this.nfa.start : -1)); }
  private char(f: Frame, cp: number, out: Frame[]) {
    if (f.a >= this.maxLength) return;
    let x = f.x;
    if (this.nfa) { x = this.nfa.step(x, cp); if (x < 0) return; }
    out.push(new Frame(this, f.up, S_IN, f.a + 1, 0, 0, x));
  }
  override step(f: Frame, b: number, out: Frame[]) {
    switch (f.ph) {
      case S_IN:
        if (b === Q) { if (f.a >= this.minLength && (!this.nfa || this.nfa.acc[f.x]!)) out.push(new Frame(this, f.up, S_END, f.a)); return; }
        if (b === BS) { if (f.a < this.maxLength && (!this.nfa || this.nfa.canStepRange(f.x, 0, 0xffff))) out.push(new Frame(this, f.up, S_ESC, f.a, 0, 0, f.x)); return; }
        if (b < 0x20) return;
        if (b < 0x80) { this.char(f, b, out); return; }
        if (f.a >= this.maxLength) return;
        {
          const u = utf8Lead(b);
          if (!u) return;
          const { n, lo, hi } = u;
          const cp = this.nfa ? b & (0x3f >> n) : 0; // the code point only matters to a regex
          // a regex must be able to take some character that starts with these bits
          // (the next byte's range matters: E0 and F0 exclude overlong, i.e. small, code points)
          const k = 64 ** (n - 1);
          if (this.nfa && !this.nfa.canStepRange(f.x, (cp * 64 + (lo & 0x3f)) * k, (cp * 64 + (hi & 0x3f) + 1) * k - 1)) return;
          out.push(new Frame(this, f.up, S_UTF8, f.a, cp * 65536 + lo * 256 + hi, n, f.x));
        }
        return;
      case S_UTF8: {
        const lo = Math.floor(f.b / 256) % 256, hi = f.b % 256;
        if (b < lo || b > hi) return;
        const cp = this.nfa ? Math.floor(f.b / 65536) * 64 + (b & 0x3f) : 0;
        if (f.c > 1) {
          const k = 64 ** (f.c - 1);
          if (this.nfa && !this.nfa.canStepRange(f.x, cp * k, (cp + 1) * k - 1)) return;
          out.push(new Frame(this, f.up, S_UTF8, f.a, cp * 65536 + 0x80bf, f.c - 1, f.x));
        }
        else this.char(f, cp, out);
        return;
      }
      case S_ESC:
        if (b === 117) out.push(new Frame(this, f.up, S_U, f.a, 0, 4, f.x));
        else if (ESCAPES[b] !== undefined) this.char(f, ESCAPES[b]!, out);
        return;
      case S_U: {
        const v = b >= 48 && b <= 57 ? b - 48 : b >= 97 && b <= 102 ? b - 87 : b >= 65 && b <= 70 ? b - 55 : -1;
        if (v < 0) return;
        const cp = f.b * 16 + v;
        if (f.c === 3 && cp >= 0xd8 && cp <= 0xdf) return; // surrogate
        if (f.c > 1) {
          const k = 16 ** (f.c - 1); // the regex must take some character with these leading digits
          if (this.nfa && !this.nfa.canStepRange(f.x, cp * k, (cp + 1) * k - 1)) return;
          out.push(new Frame(this, f.up, S_U, f.a, cp, f.c - 1, f.x));
        }
        else this.char(f, cp, out);
        return;
      }
    }
  }
  override ended(f: Frame) { return f.ph === S_END; }
  override rest(f: Frame) {
    if (f.ph === S_END) return 0;
    // bytes still owed by a character in progress; with a regex after '\\', maybe a whole \uXXXX
    let pending = f.ph === S_IN ? 0 : f.ph === S_ESC ? 1 : f.c;
    if (f.ph === S_ESC && this.nfa && !SIMPLE_ESCAPES.some((e) => this.nfa!.step(f.x, e) >= 0)) pending = 5;
    const chars = Math.max(this.minLength - f.a - (pending ? 1 : 0), 0);
    const re = this.nfa ? Math.max(this.nfa.dist[f.x]! - (pending ? 1 : 0), 0) : 0;
    return pending + Math.max(chars, re) + 1;
  }
  override sig(f: Frame) {
    const n = `${this.minLength ? Math.min(f.a, this.minLength) : 0},${this.maxLength < Infinity ? clampSig(this.maxLength - f.a) : 0}`;
    return `${f.ph},${n},${f.b},${f.c}${this.nfa ? `,${f.x}` : ''}`;
  }
  computeMin() { return 2 + Math.max(this.minLength, this.nfa ? this.nfa.dist[this.nfa.start]! : 0); }
}

const N_SIGN = 1, N_ZERO = 2, N_INT = 3, N_DOT = 4, N_FRAC = 5, N_E = 6, N_ESIGN = 7, N_EXP = 8;
export const MAX_INT_DIGITS = 15, MAX_FRAC_DIGITS = 12, MAX_EXP_DIGITS = 2;

/**
 * A number: JSON grammar with bounded digit counts (15 integer digits keep integers exact, two
 * exponent digits keep the value finite). With bounds, integer prefixes are only extended while
 * some integer within [lo, hi] is still reachable, a fraction is only started when every fraction
 * keeps the value in range, and there is no exponent. Frame: a = integer digits, b = magnitude of
 * the integer part, c = fraction / exponent digits, x = sign (-1 or 1).
 */
export class NumberNode extends Node {
  /** integer bounds derived from minimum / maximum (exclusive ones included) */
  readonly L: number;
  readonly H: number;
  readonly bounded: boolean;
  constructor(readonly integer: boolean, readonly lo = -Infinity, readonly hi = Infinity, readonly loEx = false, readonly hiEx = false) {
    super();
    this.bounded = lo > -Infinity || hi < Infinity;
    this.L = Math.max(loEx ? Math.floor(lo) + 1 : Math.ceil(lo), -(10 ** MAX_INT_DIGITS - 1));
    this.H = Math.min(hiEx ? Math.ceil(hi) - 1 : Math.floor(hi), 10 ** MAX_INT_DIGITS - 1);
  }
  /** some integer with this sign and integer-part prefix (magnitude m, d digits) lies in [L, H] */
  private reachable(s: number, m: number, d: number, zero: boolean): boolean {
    if (!this.bounded) return true;
    const hit = (a: number, b: number) => (s > 0 ? Math.max(a, this.L) <= Math.min(b, this.H) : Math.max(-b, this.L) <= Math.min(-a, this.H));
    if (zero) return hit(0, 0);
    if (d === 0) return hit(0, 10 ** MAX_INT_DIGITS - 1);
    for (let k = 0; k + d <= MAX_INT_DIGITS; k++) if (hit(m * 10 ** k, m * 10 ** k + 10 ** k - 1)) return true;
    return false;
  }
  private fracOk(s: number, m: number): boolean {
    if (this.integer) return false;
    if (!this.bounded) return true;
    const lo = s > 0 ? m : -(m + 1), hi = s > 0 ? m + 1 : -m; // the value lies in [lo, hi] (ends excluded but one)
    const loOk = s > 0 ? (this.loEx ? lo > this.lo : lo >= this.lo) : lo >= this.lo;
    const hiOk = s > 0 ? hi <= this.hi : (this.hiEx ? hi < this.hi : hi <= this.hi);
    return loOk && hiOk;
  }
  private digit(up: Frame | null, s: number, f: Frame | null, v: number, out: Frame[]) {
    const d = f ? f.a : 0, m = f ? f.b : 0;
    if (f && f.ph === N_INT && d >= MAX_INT_DIGITS) return;
    if (!f || f.ph === N_SIGN) {
      if (this.reachable(s, v, 1, v === 0)) out.push(new Frame(this, up, v === 0 ? N_ZERO : N_INT, 1, v, 0, s));
      return;
    }
    if (this.reachable(s, m * 10 + v, d + 1, false)) out.push(new Frame(this, up, N_INT, d + 1, m * 10 + v, 0, s));
  }
  enter(up: Frame, b: number, out: Frame[]) {
    if (b === 45) { if (this.reachable(-1, 0, 0, false) || this.reachable(-1, 0, 1, true)) out.push(new Frame(this, up, N_SIGN, 0, 0, 0, -1)); }
    else if (b >= 48 && b <= 57) this.digit(up, 1, null, b - 48, out);
  }
  override step(f: Frame, b: number, out: Frame[]) {
    const isDigit = b >= 48 && b <= 57;
    const s = f.x as number;
    switch (f.ph) {
      case N_SIGN: if (isDigit) this.digit(f.up, s, f, b - 48, out); return;
      case N_ZERO: case N_INT:
        if (isDigit && f.ph === N_INT) this.digit(f.up, s, f, b - 48, out);
        else if (b === 46 && this.fracOk(s, f.b)) out.push(new Frame(this, f.up, N_DOT, f.a, f.b, 0, s));
        else if ((b === 101 || b === 69) && !this.integer && !this.bounded) out.push(new Frame(this, f.up, N_E, f.a, f.b, 0, s));
        return;
      case N_DOT: case N_FRAC:
        if (isDigit && f.c < MAX_FRAC_DIGITS) out.push(new Frame(this, f.up, N_FRAC, f.a, f.b, f.c + 1, s));
        else if ((b === 101 || b === 69) && f.ph === N_FRAC && !this.bounded) out.push(new Frame(this, f.up, N_E, f.a, f.b, 0, s));
        return;
      case N_E: case N_ESIGN: case N_EXP:
        if ((b === 43 || b === 45) && f.ph === N_E) out.push(new Frame(this, f.up, N_ESIGN, f.a, f.b, 0, s));
        else if (isDigit && f.c < MAX_EXP_DIGITS) out.push(new Frame(this, f.up, N_EXP, f.a, f.b, f.c + 1, s));
        return;
    }
  }
  override ended(f: Frame) {
    if (f.ph === N_FRAC || f.ph === N_EXP) return true;
    if (f.ph !== N_ZERO && f.ph !== N_INT) return false;
    const v = (f.x as number) * f.b;
    return !this.bounded || (v >= this.L && v <= this.H);
  }
  override rest(f: Frame) { return this.ended(f) ? 0 : f.ph === N_INT || f.ph === N_SIGN ? this.restDigits(f) : 1; }
  private restDigits(f: Frame) {
    // a bounded integer prefix may need several more digits (e.g. minimum 1000 after "1")
    const s = f.x as number;
    for (let k = f.ph === N_SIGN ? 1 : 0; k + f.a <= MAX_INT_DIGITS; k++) {
      const base = f.b * 10 ** k, lo = s > 0 ? Math.max(base, this.L) : Math.max(-(base + 10 ** k - 1), this.L);
      const hi = s > 0 ? Math.min(base + 10 ** k - 1, this.H) : Math.min(-base, this.H);
      if (lo <= hi && (k > 0 || f.ph === N_INT)) return k;
    }
    return 1;
  }
  override sig(f: Frame) { return `${f.ph},${f.a},${this.bounded ? f.b : 0},${f.c},${f.x}`; }
  computeMin() {
    if (!this.bounded) return 1;
    const v = this.L > 0 ? this.L : this.H < 0 ? this.H : 0;
    return String(v).length;
  }
}

/** Min lengths of a hand-built, non-recursive graph around already-finished parts. */
export function finishGraph(root: RootNode, extra: Node[]): RootNode {
  const seen = new Set<Node>(), order: Node[] = [];
  const walk = (n: Node) => {
    if (seen.has(n)) return;
    seen.add(n);
    if (n instanceof UnionNode) n.alts.forEach(walk);
    if (n instanceof SeqNode) n.parts.forEach(walk);
    if (n instanceof RootNode) walk(n.child);
    if (n instanceof ObjectNode && n.free) { walk(n.free.key); walk(n.free.value); }
    if (n instanceof ArrayNode && n.items) walk(n.items);
    order.push(n);
  };
  extra.forEach(walk);
  walk(root);
  for (let k = 0; k < 50; k++) for (const n of order) n.minLen = Math.min(n.minLen, n.computeMin());
  for (const n of order) n.computeMin();
  return root;
}
