// The token byte tries (built once per tokenizer) and the mask walk: depth-first over a trie,
// feeding each edge byte to the automaton and pruning as soon as no stack survives, so the cost
// follows the number of *viable* token prefixes, not the vocabulary size (plus a table-driven
// fast path for the one state where nearly everything is viable: inside a string, with or without
// a pattern).
import { fail } from '../../errors.js';
import type { Tokenizer } from '../../tokenizer/index.js';
import { advance, minRemaining, S_IN, S_UTF8, setSigHorizon, StringNode, type Frame } from './automaton.js';
import { walkPatternString } from './string_walk.js';

export interface TokenTrie {
  /** node n's edges are edgeByte/edgeChild[edgeStart[n] .. edgeStart[n+1]) */
  edgeStart: Int32Array;
  edgeByte: Uint8Array;
  edgeChild: Int32Array;
  /** token ids ending at node n: tokIds[tokStart[n] .. tokStart[n+1]) */
  tokStart: Int32Array;
  tokIds: Int32Array;
  vocabSize: number;
  maxTokenBytes: number;
}

const tries = new WeakMap<Tokenizer, TokenTries>();

/** The full trie, plus what the in-string fast path needs (see walkMask). */
export interface TokenTries {
  all: TokenTrie;
  /** tokens with a byte that can leave or escape a string: '"', '\\', control bytes */
  breaking: TokenTrie;
  /** the other tokens: pure string content, whatever the rest of the stack is */
  plain: Int32Array;
  /** the plain tokens as a trie, built on first use (strings with a pattern) */
  plainTrie: TokenTrie | null;
  plainTables: Map<string, PlainTable>;
  bytes: (Uint8Array | undefined)[];
}

const breaks = (b: number) => b === 34 || b === 92 || b < 0x20;

function cmpBytes(x: Uint8Array, y: Uint8Array): number {
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

function build(vocabSize: number, ids: number[], bytesOf: (id: number) => Uint8Array): TokenTrie {
  // Insert in sorted byte order: each token shares its longest common prefix with the previous
  // one, so nodes are created in preorder with children in byte order (no per-node maps).
  const order = ids.slice().sort((a, b) => cmpBytes(bytesOf(a), bytesOf(b)));
  const parent: number[] = [-1],
    byte: number[] = [0],
    endNode: number[] = [];
  const nodeAt: number[] = [0];
  let prev: Uint8Array = new Uint8Array(0),
    maxLen = 0;
  for (const id of order) {
    const bs = bytesOf(id);
    maxLen = Math.max(maxLen, bs.length);
    let lcp = 0;
    while (lcp < bs.length && lcp < prev.length && bs[lcp] === prev[lcp]) lcp++;
    let n = nodeAt[lcp]!;
    for (let d = lcp; d < bs.length; d++) {
      const c = parent.length;
      parent.push(n);
      byte.push(bs[d]!);
      nodeAt[d + 1] = c;
      n = c;
    }
    endNode.push(n);
    prev = bs;
  }
  const N = parent.length;
  const edgeStart = new Int32Array(N + 1),
    tokStart = new Int32Array(N + 1);
  for (let c = 1; c < N; c++) edgeStart[parent[c]! + 1]!++;
  for (const n of endNode) tokStart[n + 1]!++;
  for (let n = 0; n < N; n++) {
    edgeStart[n + 1]! += edgeStart[n]!;
    tokStart[n + 1]! += tokStart[n]!;
  }
  const edgeByte = new Uint8Array(N - 1),
    edgeChild = new Int32Array(N - 1),
    tokIds = new Int32Array(order.length);
  const fillE = edgeStart.slice(0, N),
    fillT = tokStart.slice(0, N);
  for (let c = 1; c < N; c++) {
    const e = fillE[parent[c]!]!++;
    edgeByte[e] = byte[c]!;
    edgeChild[e] = c;
  }
  order.forEach((id, i) => {
    tokIds[fillT[endNode[i]!]!++] = id;
  });
  return { edgeStart, edgeByte, edgeChild, tokStart, tokIds, vocabSize, maxTokenBytes: maxLen };
}

/** Every ordinary (non-added) token with bytes. Added tokens never enter JSON. */
export function tokenTries(tok: Tokenizer): TokenTries {
  let t = tries.get(tok);
  if (t) return t;
  const added = new Set(tok.addedTokens.map((a) => a.id));
  const bytes: (Uint8Array | undefined)[] = new Array(tok.vocabSize);
  const ids: number[] = [],
    breaking: number[] = [],
    plain: number[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    if (added.has(id) || tok.specialIds.has(id)) continue;
    let b: Uint8Array;
    try {
      b = tok.tokenBytes(id);
    } catch {
      continue;
    } // unassigned id
    if (b.length === 0) continue;
    bytes[id] = b;
    ids.push(id);
    (b.some(breaks) ? breaking : plain).push(id);
  }
  const of = (id: number) => bytes[id]!;
  t = { all: build(tok.vocabSize, ids, of), breaking: build(tok.vocabSize, breaking, of), plain: Int32Array.from(plain), plainTrie: null, plainTables: new Map(), bytes };
  setSigHorizon(t.all.maxTokenBytes);
  tries.set(tok, t);
  return t;
}

export function tokenTrie(tok: Tokenizer): TokenTrie {
  return tokenTries(tok).all;
}

function plainTrie(t: TokenTries): TokenTrie {
  return (t.plainTrie ??= build(t.all.vocabSize, Array.from(t.plain), (id) => t.bytes[id]!));
}

/** For one UTF-8 entry state: the plain tokens that are valid UTF-8 continuations, with the bytes
 * left pending at their end and the code points they complete. */
interface PlainTable {
  ids: Int32Array;
  pend: Uint8Array;
  chars: Uint8Array;
}

function plainTable(t: TokenTries, need: number, lo: number, hi: number): PlainTable {
  const key = `${need},${lo},${hi}`;
  let pt = t.plainTables.get(key);
  if (pt) return pt;
  const ids: number[] = [],
    pend: number[] = [],
    chars: number[] = [];
  for (const id of t.plain) {
    let n = need,
      l = lo,
      h = hi,
      c = 0,
      ok = true;
    for (const b of t.bytes[id]!) {
      if (n > 0) {
        if (b < l || b > h) {
          ok = false;
          break;
        }
        l = 0x80;
        h = 0xbf;
        if (--n === 0) c++;
      } else if (b < 0x80) c++;
      else if (b < 0xc2 || b > 0xf4) {
        ok = false;
        break;
      } else {
        // lead byte: continuation count and the range of the first continuation (RFC 3629)
        l = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
        h = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
        n = b <= 0xdf ? 1 : b <= 0xef ? 2 : 3;
      }
    }
    if (ok) {
      ids.push(id);
      pend.push(n);
      chars.push(c);
    }
  }
  pt = { ids: Int32Array.from(ids), pend: Uint8Array.from(pend), chars: Uint8Array.from(chars) };
  t.plainTables.set(key, pt);
  return pt;
}

export interface MaskResult {
  mask: Uint8Array;
  /** largest min-remaining-bytes over the allowed tokens (to know when a budget bites) */
  maxMr: number;
  count: number;
}

/**
 * Most work one mask may take, in units of ~30 ns: a frame advanced over a trie edge costs 4, a
 * node of the pattern-string walk or an entry of the plain-string table 1. A plain-string mask is
 * ~0.2M units, a pattern string ~0.4M, a full-vocabulary walk of one stack ~1.4M. Past the cap the
 * request fails with a message instead of holding a core (anyOf over dozens of open strings took
 * seconds a token).
 */
export const MAX_MASK_WORK = 8_000_000;

export interface WorkBudget {
  left: number;
}

function spend(budget: WorkBudget, n: number): void {
  if ((budget.left -= n) < 0) {
    fail(`constrained decoding: the schema is too complex to enforce here (one token's mask is over the work cap of ${MAX_MASK_WORK} steps); use fewer or simpler anyOf alternatives`);
  }
}

const isOpenString = (f: Frame) => f.node instanceof StringNode && (f.ph === S_IN || f.ph === S_UTF8);

/**
 * Allowed tokens from `states`: those whose every byte the automaton accepts. With `limit`, only
 * tokens after which the document can still be completed in `limit` bytes.
 */
export function walkMask(t: TokenTries, states: Frame[], limit = Infinity): MaskResult {
  const budget = { left: MAX_MASK_WORK };
  const open = states.filter(isOpenString);
  if (states.length < 2 || open.length === 0) return walkStates(t, states, limit, budget);
  // Several stacks (anyOf): stacks evolve independently, so the allowed set is the union of each
  // one's, and an open string on its own takes a fast path below. (maxMr may come out above the
  // true maximum: that only makes the caller compute a budget mask that drops nothing.)
  const rest = states.filter((f) => !isOpenString(f));
  const r = rest.length ? walkStates(t, rest, limit, budget) : { mask: new Uint8Array(t.all.vocabSize), maxMr: 0, count: 0 };
  for (const f of open) {
    const o = walkStates(t, [f], limit, budget);
    for (let i = 0; i < o.mask.length; i++) r.mask[i]! |= o.mask[i]!;
    if (o.maxMr > r.maxMr) r.maxMr = o.maxMr;
  }
  let count = 0;
  for (let i = 0; i < r.mask.length; i++) count += r.mask[i]!;
  r.count = count;
  return r;
}

function walkStates(t: TokenTries, states: Frame[], limit: number, budget: WorkBudget): MaskResult {
  const f = states[0]!;
  if (states.length === 1 && f.node instanceof StringNode && f.node.nfa && (f.ph === S_IN || f.ph === S_UTF8)) {
    // Inside a string with a pattern: the same split, with the string content walked over its own
    // trie by DFA lookups (string_walk.ts), never one Frame per trie edge.
    const r = walkTrie(t.breaking, states, limit, budget);
    walkPatternString(plainTrie(t), f, limit, r, budget);
    spend(budget, 0);
    return r;
  }
  if (states.length === 1 && f.node instanceof StringNode && !f.node.nfa && (f.ph === S_IN || f.ph === S_UTF8)) {
    // Inside a plain string almost every token is string content. Those that hold no '"', '\\' or
    // control byte cannot leave the string, so only UTF-8 validity (from a table) and the length
    // budget decide them; the trie walk is needed only for the few thousand others.
    const r = walkTrie(t.breaking, states, limit, budget);
    const node = f.node,
      pt = f.ph === S_IN ? plainTable(t, 0, 0, 0) : plainTable(t, f.c, Math.floor(f.b / 256) % 256, f.b % 256);
    const others = minRemaining(f.up);
    const { ids, pend, chars } = pt;
    spend(budget, ids.length);
    for (let i = 0; i < ids.length; i++) {
      const p = pend[i]!,
        a = f.a + chars[i]!;
      if (a + (p ? 1 : 0) > node.maxLength) continue; // a character in progress already counts
      const mr = others + p + Math.max(node.minLength - a - (p ? 1 : 0), 0) + 1; // = StringNode.rest after the token
      if (mr > limit) continue;
      if (mr > r.maxMr) r.maxMr = mr;
      r.mask[ids[i]!] = 1;
      r.count++;
    }
    return r;
  }
  return walkTrie(t.all, states, limit, budget);
}

function walkTrie(trie: TokenTrie, states: Frame[], limit: number, budget: WorkBudget): MaskResult {
  const mask = new Uint8Array(trie.vocabSize);
  const { edgeStart, edgeByte, edgeChild, tokStart, tokIds } = trie;
  let maxMr = 0,
    count = 0;
  const visit = (node: number, cur: Frame[]) => {
    for (let e = edgeStart[node]!, end = edgeStart[node + 1]!; e < end; e++) {
      const b = edgeByte[e]!,
        child = edgeChild[e]!;
      const next: Frame[] = [];
      spend(budget, 4 * cur.length);
      for (let i = 0; i < cur.length; i++) advance(cur[i]!, b, next);
      if (next.length === 0) continue;
      const t0 = tokStart[child]!,
        t1 = tokStart[child + 1]!;
      if (t0 < t1) {
        let mr = Infinity;
        for (let i = 0; i < next.length; i++) {
          const m = minRemaining(next[i]!);
          if (m < mr) mr = m;
        }
        if (mr <= limit) {
          if (mr > maxMr) maxMr = mr;
          for (let t = t0; t < t1; t++) {
            mask[tokIds[t]!] = 1;
            count++;
          }
        }
      }
      if (edgeStart[child]! < edgeStart[child + 1]!) visit(child, next);
    }
  };
  visit(0, states);
  return { mask, maxMr, count };
}
