// A small regular-expression engine for JSON Schema `pattern` and the string `format`s we enforce.
// Parsed to a Thompson NFA over Unicode code points, then determinised in full (dfa.ts, under
// size budgets) so the string automaton advances it one character at a time by table lookup.
// Supported: literals, escapes (\d \w \s \D \W \S \. \n \t \uXXXX ...), classes [a-z] [^...], `.`,
// groups ( ) (?: ), alternation, quantifiers ? * + {n} {n,} {n,m} (lazy forms behave the same),
// ^ at the very start and $ at the very end. No backreferences, lookaround or \b: those are refused.

import { determinize, type Regex } from './dfa.js';

export { Regex } from './dfa.js';

/** Inclusive code-point ranges, sorted. */
type Ranges = number[];
type Ast = { t: 'set'; r: Ranges } | { t: 'cat'; a: Ast[] } | { t: 'alt'; a: Ast[] } | { t: 'rep'; a: Ast; min: number; max: number };

export class RegexError extends Error {}

const DIGIT: Ranges = [48, 57];
const WORD: Ranges = [48, 57, 65, 90, 95, 95, 97, 122];
const SPACE: Ranges = [9, 13, 32, 32, 160, 160, 0x2028, 0x2029, 0xfeff, 0xfeff];
const ANY_BUT_NL: Ranges = [0, 9, 11, 12, 14, 0x2027, 0x202a, 0x10ffff];
const MAX_CP = 0x10ffff;

function norm(r: Ranges): Ranges {
  const p: [number, number][] = [];
  for (let i = 0; i < r.length; i += 2) p.push([r[i]!, r[i + 1]!]);
  p.sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  for (const [a, b] of p) {
    if (out.length && a <= out[out.length - 1]! + 1) out[out.length - 1] = Math.max(out[out.length - 1]!, b);
    else out.push(a, b);
  }
  return out;
}
function negate(r: Ranges): Ranges {
  const out: Ranges = [];
  let lo = 0;
  for (let i = 0; i < r.length; i += 2) {
    if (r[i]! > lo) out.push(lo, r[i]! - 1);
    lo = r[i + 1]! + 1;
  }
  if (lo <= MAX_CP) out.push(lo, MAX_CP);
  return out;
}
function caseFold(r: Ranges): Ranges {
  const out = [...r];
  for (let i = 0; i < r.length; i += 2) {
    const a = Math.max(r[i]!, 65),
      b = Math.min(r[i + 1]!, 90);
    if (a <= b) out.push(a + 32, b + 32);
    const c = Math.max(r[i]!, 97),
      d = Math.min(r[i + 1]!, 122);
    if (c <= d) out.push(c - 32, d - 32);
  }
  return norm(out);
}

class Parser {
  i = 0;
  constructor(
    readonly s: string,
    readonly fold: boolean,
  ) {}
  err(m: string): never {
    throw new RegexError(`${m} at offset ${this.i} of /${this.s}/`);
  }
  parseAlt(): Ast {
    const alts = [this.parseCat()];
    while (this.s[this.i] === '|') {
      this.i++;
      alts.push(this.parseCat());
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', a: alts };
  }
  parseCat(): Ast {
    const a: Ast[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')' && !this.endAnchor()) a.push(this.parseRep());
    return { t: 'cat', a };
  }
  /** a '$' that ends a top-level alternative (anywhere else it is refused) */
  endAnchor(): boolean {
    if (this.s[this.i] !== '$') return false;
    const n = this.s[this.i + 1];
    return n === undefined || n === '|';
  }
  parseRep(): Ast {
    let atom = this.parseAtom();
    for (;;) {
      const c = this.s[this.i];
      let min: number, max: number;
      if (c === '?') {
        min = 0;
        max = 1;
        this.i++;
      } else if (c === '*') {
        min = 0;
        max = Infinity;
        this.i++;
      } else if (c === '+') {
        min = 1;
        max = Infinity;
        this.i++;
      } else if (c === '{' && /^\{\d+(,\d*)?\}/.test(this.s.slice(this.i))) {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.s.slice(this.i))!;
        this.i += m[0].length;
        min = +m[1]!;
        max = m[2] === undefined ? min : m[3] === '' ? Infinity : +m[3]!;
        if (max < min || min > 1000 || (max !== Infinity && max > 1000)) this.err('bad repetition bounds');
      } else return atom;
      if (this.s[this.i] === '?') this.i++; // lazy: the set of matched strings is the same
      atom = { t: 'rep', a: atom, min, max };
    }
  }
  parseAtom(): Ast {
    const c = this.s[this.i]!;
    if (c === '(') {
      this.i++;
      if (this.s[this.i] === '?') {
        if (this.s[this.i + 1] !== ':') this.err('lookaround and named groups are not supported');
        this.i += 2;
      }
      const a = this.parseAlt();
      if (this.s[this.i] !== ')') this.err('unbalanced parenthesis');
      this.i++;
      return a;
    }
    if (c === '[') return this.set(this.parseClass());
    if (c === '.') {
      this.i++;
      return this.set(ANY_BUT_NL);
    }
    if (c === '^' || c === '$') this.err(`anchor '${c}' is only supported at the start / end of a top-level alternative`);
    if (c === '*' || c === '+' || c === '?' || (c === '{' && /^\{\d/.test(this.s.slice(this.i)))) this.err('nothing to repeat');
    if (c === '\\') {
      this.i++;
      return this.set(this.parseEscape(false));
    }
    const cp = this.s.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return this.set([cp, cp]);
  }
  set(r: Ranges): Ast {
    return { t: 'set', r: this.fold ? caseFold(r) : r };
  }
  parseEscape(inClass: boolean): Ranges {
    const c = this.s[this.i++];
    if (c === undefined) this.err('trailing backslash');
    switch (c) {
      case 'd':
        return DIGIT;
      case 'D':
        return negate(DIGIT);
      case 'w':
        return WORD;
      case 'W':
        return negate(WORD);
      case 's':
        return SPACE;
      case 'S':
        return negate(SPACE);
      case 'n':
        return [10, 10];
      case 't':
        return [9, 9];
      case 'r':
        return [13, 13];
      case 'f':
        return [12, 12];
      case 'v':
        return [11, 11];
      case '0':
        return [0, 0];
      case 'b':
        if (inClass) return [8, 8];
        break;
      case 'u':
      case 'x': {
        const n = c === 'u' ? 4 : 2,
          h = this.s.slice(this.i, this.i + n);
        if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) this.err(`bad \\${c} escape`);
        this.i += n;
        const v = parseInt(h, 16);
        return [v, v];
      }
    }
    if (/[A-Za-z0-9]/.test(c)) {
      this.i--;
      this.err(`unsupported escape \\${c}`);
    }
    const cp = c.codePointAt(0)!;
    return [cp, cp];
  }
  parseClass(): Ranges {
    this.i++; // [
    let neg = false;
    if (this.s[this.i] === '^') {
      neg = true;
      this.i++;
    }
    const r: Ranges = [];
    let first = true;
    while (this.s[this.i] !== ']' || first) {
      first = false;
      if (this.i >= this.s.length) this.err('unterminated character class');
      const lo = this.classAtom();
      if (this.s[this.i] === '-' && this.s[this.i + 1] !== ']' && this.i + 1 < this.s.length) {
        this.i++;
        const hi = this.classAtom();
        if (lo.length !== 2 || hi.length !== 2 || lo[0] !== lo[1] || hi[0] !== hi[1] || hi[0]! < lo[0]!) this.err('bad class range');
        r.push(lo[0]!, hi[0]!);
      } else r.push(...lo);
    }
    this.i++; // ]
    const n = norm(r);
    return neg ? negate(n) : n;
  }
  classAtom(): Ranges {
    if (this.s[this.i] === '\\') {
      this.i++;
      return this.parseEscape(true);
    }
    const cp = this.s.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return [cp, cp];
  }
}

/** NFA: state i has either a character edge (ranges -> next) or epsilon edges. */
export interface Nfa {
  ranges: (Ranges | null)[];
  next: number[];
  eps: number[][];
  accept: number;
  /** epsilon-closed start set */
  start: number[];
  /** fewest UTF-8 bytes from each state to acceptance */
  dist: number[];
}

const MAX_STATES = 4000;

/** Compile `src`. JSON Schema patterns are unanchored: ^ and $ anchor, otherwise .* is implied. */
export function compileRegex(src: string, flags = ''): Nfa {
  const p = new Parser(src, flags.includes('i'));
  // top-level alternatives, each with its own anchors: /^a|b$/ is (^a)|(b$)
  const anyStar: Ast = { t: 'rep', a: { t: 'set', r: [0, MAX_CP] }, min: 0, max: Infinity };
  const alts: Ast[] = [];
  for (;;) {
    const pre = p.s[p.i] !== '^';
    if (!pre) p.i++;
    const a = p.parseCat();
    let post = true;
    if (p.s[p.i] === '$') {
      p.i++;
      post = false;
    }
    alts.push({ t: 'cat', a: [...(pre ? [anyStar] : []), a, ...(post ? [anyStar] : [])] });
    if (p.s[p.i] !== '|') break;
    p.i++;
  }
  if (p.i !== src.length) p.err(p.s[p.i] === ')' ? 'unbalanced parenthesis' : `anchor '${p.s[p.i]}' is only supported at the start / end of a top-level alternative`);
  const full: Ast = alts.length === 1 ? alts[0]! : { t: 'alt', a: alts };
  const ranges: (Ranges | null)[] = [],
    next: number[] = [],
    eps: number[][] = [];
  const add = () => {
    if (ranges.length >= MAX_STATES) throw new RegexError(`/${src}/ is too large (over ${MAX_STATES} states)`);
    ranges.push(null);
    next.push(-1);
    eps.push([]);
    return ranges.length - 1;
  };
  // build(a, from) returns the state reached after matching a, starting at `from`
  const build = (a: Ast, from: number): number => {
    switch (a.t) {
      case 'set': {
        const to = add();
        ranges[from] = a.r;
        next[from] = to;
        return to;
      }
      case 'cat': {
        let cur = from;
        for (const x of a.a) cur = build(x, cur);
        return cur;
      }
      case 'alt': {
        const end = add();
        for (const x of a.a) {
          const st = add();
          eps[from]!.push(st);
          eps[build(x, st)]!.push(end);
        }
        return end;
      }
      case 'rep': {
        let cur = from;
        for (let k = 0; k < a.min; k++) cur = build(a.a, cur);
        if (a.max === Infinity) {
          const loop = add(),
            end = add();
          eps[cur]!.push(loop);
          eps[loop]!.push(end);
          const st = add();
          eps[loop]!.push(st);
          eps[build(a.a, st)]!.push(loop);
          return end;
        }
        const end = add();
        for (let k = a.min; k < a.max; k++) {
          eps[cur]!.push(end);
          const st = add();
          eps[cur]!.push(st);
          cur = build(a.a, st);
        }
        eps[cur]!.push(end);
        return end;
      }
    }
  };
  const s0 = add();
  const accept = build(full, s0);
  const nfa: Nfa = { ranges, next, eps, accept, start: [], dist: [] };
  nfa.start = closure(nfa, [s0]);
  // dist: reverse shortest path (Bellman-Ford style relaxation). Edges mostly point to higher
  // states, so a descending sweep settles a chain in one pass (ascending took one pass per state).
  const dist = new Array<number>(ranges.length).fill(Infinity);
  dist[accept] = 0;
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = ranges.length - 1; i >= 0; i--) {
      let d = dist[i]!;
      for (const e of eps[i]!) d = Math.min(d, dist[e]!);
      const r = ranges[i];
      if (r?.length) d = Math.min(d, utf8Len(r[0]!) + dist[next[i]!]!); // an empty class ([^\s\S]) leads nowhere
      if (d < dist[i]!) {
        dist[i] = d;
        changed = true;
      }
    }
  }
  nfa.dist = dist;
  if (dist[s0] === Infinity) throw new RegexError(`/${src}/ matches nothing`);
  return nfa;
}

const utf8Len = (cp: number) => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);

function closure(n: Nfa, set: number[]): number[] {
  const seen = new Set<number>(set),
    work = [...set];
  while (work.length)
    for (const e of n.eps[work.pop()!]!)
      if (!seen.has(e)) {
        seen.add(e);
        work.push(e);
      }
  // keep only states that matter: character edges and the accept state
  return [...seen].filter((s) => n.ranges[s] || s === n.accept).sort((a, b) => a - b);
}

const compiledRegexes = new Map<string, Regex | RegexError>();
const MAX_CACHED = 64,
  MAX_CACHED_CELLS = 4_000_000; // ~16 MB of tables at most
let cachedCells = 0;
const cellsOf = (r: Regex | RegexError) => (r instanceof RegexError ? 0 : r.cells);

/**
 * Compile `src` (JSON Schema semantics: unanchored unless ^ / $) to a complete DFA. Throws
 * RegexError, also when the automaton is over the DFA_LIMITS budgets. Results (refusals too) are
 * cached: the server validates a schema and then compiles it, and a client repeating a costly
 * pattern pays for it once.
 */
export function regex(src: string): Regex {
  let r = compiledRegexes.get(src);
  if (r === undefined) {
    try {
      r = determinize(compileRegex(src), (why) => {
        throw new RegexError(`/${src}/ is too complex to enforce (${why}); use smaller {n,m} counts or anchor it with ^...$`);
      });
    } catch (e) {
      if (!(e instanceof RegexError)) throw e;
      r = e;
    }
    cachedCells += cellsOf(r);
  } else compiledRegexes.delete(src); // LRU order
  compiledRegexes.set(src, r);
  while (compiledRegexes.size > 1 && (compiledRegexes.size > MAX_CACHED || cachedCells > MAX_CACHED_CELLS)) {
    const [k, old] = compiledRegexes.entries().next().value!;
    compiledRegexes.delete(k);
    cachedCells -= cellsOf(old);
  }
  if (r instanceof RegexError) throw r;
  return r;
}

// Formats: regexes whose every match passes the usual validators (ajv-formats, RFC 3339). Dates
// use month-aware day ranges (Feb stops at 28 so leap years never matter); times carry a zone.
const DATE = '\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8]))';
const TIME = '(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,6})?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)';
const LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?';
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
export const FORMATS: Record<string, string> = {
  date: `^${DATE}$`,
  time: `^${TIME}$`,
  'date-time': `^${DATE}T${TIME}$`,
  email: `^[a-zA-Z0-9_+-]{1,32}(?:\\.[a-zA-Z0-9_+-]{1,32}){0,3}@(?:${LABEL}\\.){1,3}[a-zA-Z]{2,8}$`,
  uuid: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  ipv4: `^${OCTET}(?:\\.${OCTET}){3}$`,
};
