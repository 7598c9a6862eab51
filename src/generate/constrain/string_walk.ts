// The mask walk inside a string with a pattern, for the tokens that cannot leave the string (no
// '"', '\\' or control byte): a depth-first walk of their trie that carries the string's state as
// plain integers (DFA state, code points so far, UTF-8 bytes pending) instead of allocating a
// Frame per trie edge. Every step is a table lookup (dfa.ts), so a pattern string costs about what
// a plain string does. It mirrors StringNode.step / rest exactly; the brute-force mask tests in
// constrain_tokens.test.ts hold it to that.
import { minRemaining, S_IN, type StringNode, utf8Lead, type Frame } from './automaton.js';
import type { MaskResult, TokenTrie, WorkBudget } from './trie.js';

// utf8Lead as tables (no object per byte): continuation count (0 = not a lead byte) and the range
// of the first continuation byte
const LEAD_N = new Uint8Array(256),
  LEAD_LO = new Uint8Array(256),
  LEAD_HI = new Uint8Array(256);
for (let b = 0x80; b < 256; b++) {
  const u = utf8Lead(b);
  if (u) {
    LEAD_N[b] = u.n;
    LEAD_LO[b] = u.lo;
    LEAD_HI[b] = u.hi;
  }
}

/** Add to `r` the tokens of `trie` (string content only) allowed from string frame `f`. */
export function walkPatternString(trie: TokenTrie, f: Frame, limit: number, r: MaskResult, budget: WorkBudget): void {
  const node = f.node as StringNode,
    re = node.nfa!;
  const minL = node.minLength,
    maxL = node.maxLength,
    others = minRemaining(f.up);
  const { edgeStart, edgeByte, edgeChild, tokStart, tokIds } = trie;
  const { mask } = r;
  const { trans, asciiCls, nClasses: C } = re;
  const D = trie.maxTokenBytes + 1;
  // per trie depth: node, next edge to take, and the string state after the bytes above
  const nodeA = new Int32Array(D),
    edgeA = new Int32Array(D),
    sA = new Int32Array(D),
    aA = new Float64Array(D);
  const pA = new Int32Array(D),
    cpA = new Int32Array(D),
    loA = new Int32Array(D),
    hiA = new Int32Array(D);
  nodeA[0] = 0;
  edgeA[0] = edgeStart[0]!;
  sA[0] = f.x as number;
  aA[0] = f.a;
  if (f.ph === S_IN) pA[0] = 0;
  else {
    pA[0] = f.c;
    cpA[0] = Math.floor(f.b / 65536);
    loA[0] = Math.floor(f.b / 256) % 256;
    hiA[0] = f.b % 256;
  }
  let maxMr = r.maxMr,
    count = r.count,
    steps = 0;
  for (let d = 0; d >= 0; steps++) {
    const e = edgeA[d]!;
    if (e >= edgeStart[nodeA[d]! + 1]!) {
      d--;
      continue;
    }
    edgeA[d] = e + 1;
    const b = edgeByte[e]!,
      child = edgeChild[e]!;
    let s = sA[d]!,
      a = aA[d]!,
      p = pA[d]!,
      cp = cpA[d]!,
      lo = loA[d]!,
      hi = hiA[d]!;
    if (p === 0) {
      if (a >= maxL) continue;
      if (b < 0x80) {
        s = trans[s * C + asciiCls[b]!]!; // = re.step(s, b)
        if (s < 0) continue;
        a++;
      } else {
        const n = LEAD_N[b]!;
        if (n === 0) continue;
        lo = LEAD_LO[b]!;
        hi = LEAD_HI[b]!;
        cp = b & (0x3f >> n);
        const k = 64 ** (n - 1); // some character starting with these bits must be acceptable
        if (!re.canStepRange(s, (cp * 64 + (lo & 0x3f)) * k, (cp * 64 + (hi & 0x3f) + 1) * k - 1)) continue;
        p = n;
      }
    } else {
      if (b < lo || b > hi) continue;
      cp = cp * 64 + (b & 0x3f);
      if (p > 1) {
        const k = 64 ** (p - 1);
        if (!re.canStepRange(s, cp * k, (cp + 1) * k - 1)) continue;
        p--;
        lo = 0x80;
        hi = 0xbf;
      } else {
        if (a >= maxL) continue;
        s = re.step(s, cp);
        if (s < 0) continue;
        a++;
        p = 0;
      }
    }
    const t0 = tokStart[child]!,
      t1 = tokStart[child + 1]!;
    if (t0 < t1) {
      // = minRemaining of the stack after the token (StringNode.rest plus the frames above)
      const adj = p ? 1 : 0;
      const mr = others + p + Math.max(minL - a - adj, re.dist[s]! - adj, 0) + 1;
      if (mr <= limit) {
        if (mr > maxMr) maxMr = mr;
        for (let t = t0; t < t1; t++) {
          mask[tokIds[t]!] = 1;
          count++;
        }
      }
    }
    if (edgeStart[child]! < edgeStart[child + 1]!) {
      d++;
      nodeA[d] = child;
      edgeA[d] = edgeStart[child]!;
      sA[d] = s;
      aA[d] = a;
      pA[d] = p;
      cpA[d] = cp;
      loA[d] = lo;
      hiA[d] = hi;
    }
  }
  r.maxMr = maxMr;
  r.count = count;
  budget.left -= steps; // at most the trie's size, so the caller checks once, after the walk
}
