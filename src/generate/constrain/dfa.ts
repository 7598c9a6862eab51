// The pattern NFA determinised in full when the schema is compiled, under fixed budgets.
//
// Why eagerly and bounded: a lazily built DFA does its set construction while decoding, so a
// pattern such as [\s\S]{1000} (unanchored: ~1000 NFA positions alive at once) made every step
// build new 1000-element state sets for tens of thousands of code points (~1 s a token, growing).
// Here every DFA state and transition exists before the first token, the construction itself is
// capped (states, stored set entries, work, table size), and a pattern over a cap is refused up
// front with a message naming it (the server answers 400). A decoding step is table lookups only.
//
// The alphabet is split into intervals at every range boundary of the NFA, and intervals that
// every NFA range treats alike share a class, so a transition is computed once per class (for
// [\s\S]{1000} that is one class) instead of once per code point.
import type { Nfa } from './regex.js';

/**
 * Construction caps, so that refusing costs at most ~0.1-0.2 s of one core. For scale: the email
 * format takes 346 states and 25k work; [\s\S]{1000} (unanchored) 1001 states, 500k set entries
 * and 2.5M work (~50 ms); (a{50}){50} unanchored would need 3M set entries and is refused.
 */
export const DFA_LIMITS = {
  /** DFA states */
  states: 20_000,
  /** NFA positions summed over all DFA states (the memory the construction holds) */
  setEntries: 1_000_000,
  /** elementary operations of the whole construction (~20 ms per million) */
  work: 10_000_000,
  /** transition-table entries (states x classes), 4 bytes each */
  table: 1_000_000,
};

const MAX_CP = 0x10ffff;

/** A complete DFA over code points. State 0 is the start; -1 is dead (no completion possible). */
export class Regex {
  readonly start = 0;
  /** class of each ASCII code point (the mask walk inlines ASCII steps: trans[s * nClasses + asciiCls[b]]) */
  readonly asciiCls: Int32Array;
  constructor(
    /** interval i covers code points bounds[i] .. bounds[i+1]-1 */
    private readonly bounds: Int32Array,
    private readonly cls: Int32Array,
    readonly nClasses: number,
    /** state * nClasses + class -> next state, -1 dead */
    readonly trans: Int32Array,
    readonly acc: boolean[],
    /** fewest UTF-8 bytes from each state to a match */
    readonly dist: number[],
    /** per state: sorted, merged [lo, hi] code-point pairs that have a live transition */
    private readonly live: Int32Array[],
  ) {
    this.asciiCls = new Int32Array(128);
    for (let cp = 0; cp < 128; cp++) this.asciiCls[cp] = cls[this.interval(cp)]!;
  }
  get states(): number {
    return this.acc.length;
  }
  /** table entries held (to bound a cache of compiled patterns) */
  get cells(): number {
    let n = this.trans.length + this.acc.length;
    for (const r of this.live) n += r.length;
    return n;
  }
  private interval(cp: number): number {
    const b = this.bounds;
    let lo = 0,
      hi = b.length - 1; // largest i with b[i] <= cp (b[0] is 0)
    while (lo < hi) {
      const m = (lo + hi + 1) >> 1;
      if (b[m]! <= cp) lo = m;
      else hi = m - 1;
    }
    return lo;
  }
  /** next state, or -1 when the character leaves no way to match */
  step(state: number, cp: number): number {
    const c = cp < 128 ? this.asciiCls[cp]! : this.cls[this.interval(cp)]!;
    return this.trans[state * this.nClasses + c]!;
  }
  /** whether some code point in [lo, hi] can be consumed (UTF-8 lead bytes, before the whole character is known) */
  canStepRange(state: number, lo: number, hi: number): boolean {
    const r = this.live[state]!;
    let a = 0,
      b = r.length >> 1; // first pair whose end is >= lo
    while (a < b) {
      const m = (a + b) >> 1;
      if (r[2 * m + 1]! < lo) a = m + 1;
      else b = m;
    }
    return a < r.length >> 1 && r[2 * a]! <= hi;
  }
}

/** Subset construction of `nfa`; `refuse(why)` throws (the caller names the pattern). */
export function determinize(nfa: Nfa, refuse: (why: string) => never, limits = DFA_LIMITS): Regex {
  const { ranges, next, eps, accept } = nfa;
  const n = ranges.length;
  let work = 0;
  const spend = (w: number) => {
    work += w;
    if (work > limits.work) refuse(`its automaton needs over ${limits.work} steps to build`);
  };

  // elementary intervals: cut at every range start and every range end + 1
  const pts: number[] = [0];
  for (const r of ranges) if (r) for (let i = 0; i < r.length; i += 2) pts.push(r[i]!, r[i + 1]! + 1);
  pts.sort((a, b) => a - b);
  const bl: number[] = [];
  for (const p of pts) if (p <= MAX_CP && p !== bl[bl.length - 1]) bl.push(p);
  const bounds = Int32Array.from(bl),
    nI = bounds.length;
  spend(pts.length);
  const intervalOf = (cp: number) => {
    let lo = 0,
      hi = nI - 1;
    while (lo < hi) {
      const m = (lo + hi + 1) >> 1;
      if (bounds[m]! <= cp) lo = m;
      else hi = m - 1;
    }
    return lo;
  };
  // each character state's ranges as interval-index spans [i0, i1]
  const spans: Int32Array[] = new Array(n);
  for (let s = 0; s < n; s++) {
    const r = ranges[s];
    if (!r) continue;
    const sp = new Int32Array(r.length);
    for (let i = 0; i < r.length; i += 2) {
      sp[i] = intervalOf(r[i]!);
      sp[i + 1] = intervalOf(r[i + 1]!);
    }
    spans[s] = sp;
  }
  // classes by partition refinement: each character state splits the classes it partly covers
  const cls = new Int32Array(nI);
  let fresh = 1;
  for (let s = 0; s < n; s++) {
    const sp = spans[s];
    if (!sp) continue;
    const remap = new Map<number, number>();
    for (let k = 0; k < sp.length; k += 2) {
      spend(sp[k + 1]! - sp[k]! + 1);
      for (let i = sp[k]!; i <= sp[k + 1]!; i++) {
        let to = remap.get(cls[i]!);
        if (to === undefined) {
          to = fresh++;
          remap.set(cls[i]!, to);
        }
        cls[i] = to;
      }
    }
  }
  const compact = new Map<number, number>();
  for (let i = 0; i < nI; i++) {
    let c = compact.get(cls[i]!);
    if (c === undefined) {
      c = compact.size;
      compact.set(cls[i]!, c);
    }
    cls[i] = c;
  }
  const C = compact.size;
  // the classes each character state takes (flat: classesOf[cStart[s] .. cStart[s+1]))
  const cStart = new Int32Array(n + 1),
    flat: number[] = [],
    seenCls = new Int32Array(C).fill(-1);
  for (let s = 0; s < n; s++) {
    const sp = spans[s];
    if (sp)
      for (let k = 0; k < sp.length; k += 2) {
        spend(sp[k + 1]! - sp[k]! + 1);
        for (let i = sp[k]!; i <= sp[k + 1]!; i++)
          if (seenCls[cls[i]!] !== s) {
            seenCls[cls[i]!] = s;
            flat.push(cls[i]!);
          }
      }
    cStart[s + 1] = flat.length;
  }

  // epsilon closure, keeping only the states that matter (character edges and acceptance)
  const mark = new Int32Array(n),
    buf = new Int32Array(n);
  let stamp = 0;
  const stack: number[] = [];
  const closure = (from: number[]): Int32Array => {
    stamp++;
    let len = 0;
    for (const s of from)
      if (mark[s] !== stamp) {
        mark[s] = stamp;
        stack.push(s);
      }
    while (stack.length) {
      const s = stack.pop()!;
      if (ranges[s] || s === accept) buf[len++] = s;
      const e = eps[s]!;
      for (let k = 0; k < e.length; k++) {
        const t = e[k]!;
        if (mark[t] !== stamp) {
          mark[t] = stamp;
          stack.push(t);
        }
      }
      work += e.length;
    }
    spend(len + from.length);
    return buf.slice(0, len).sort();
  };

  // interning: hash -> ids of the sets with that hash
  const sets: Int32Array[] = [],
    acc: boolean[] = [],
    dist: number[] = [];
  const byHash = new Map<number, number[]>();
  let entries = 0;
  const intern = (set: Int32Array): number => {
    let h = 0x811c9dc5 ^ set.length;
    for (let i = 0; i < set.length; i++) h = Math.imul(h ^ set[i]!, 0x01000193);
    spend(set.length);
    const bucket = byHash.get(h);
    if (bucket)
      for (const id of bucket) {
        const o = sets[id]!;
        if (o.length !== set.length) continue;
        let i = 0;
        while (i < o.length && o[i] === set[i]) i++;
        if (i === o.length) return id;
      }
    let d = Infinity;
    for (let i = 0; i < set.length; i++) d = Math.min(d, nfa.dist[set[i]!]!);
    if (d === Infinity) return -1; // no match can follow: a dead state, not a state
    if (sets.length >= limits.states) refuse(`its automaton has over ${limits.states} states`);
    entries += set.length;
    if (entries > limits.setEntries) refuse(`its automaton's states hold over ${limits.setEntries} positions`);
    if ((sets.length + 1) * C > limits.table) refuse(`its transition table exceeds ${limits.table} entries`);
    const id = sets.length;
    sets.push(set);
    acc.push(set.includes(accept));
    dist.push(d);
    if (bucket) bucket.push(id);
    else byHash.set(h, [id]);
    return id;
  };

  if (intern(closure(nfa.start)) !== 0) refuse('it matches nothing');
  const trans: number[] = [];
  const targets: number[][] = Array.from({ length: C }, () => []);
  const touched: number[] = [];
  for (let id = 0; id < sets.length; id++) {
    const set = sets[id]!;
    for (let i = 0; i < set.length; i++) {
      const s = set[i]!;
      if (!ranges[s]) continue;
      spend(cStart[s + 1]! - cStart[s]! + 1);
      for (let k = cStart[s]!; k < cStart[s + 1]!; k++) {
        const c = flat[k]!;
        if (targets[c]!.length === 0) touched.push(c);
        targets[c]!.push(next[s]!);
      }
    }
    const row = trans.length;
    for (let c = 0; c < C; c++) trans.push(-1);
    for (const c of touched) {
      trans[row + c] = intern(closure(targets[c]!));
      targets[c]!.length = 0;
    }
    touched.length = 0;
  }
  // per state, the code points with a live transition, merged (for UTF-8 lead-byte checks)
  const live: Int32Array[] = [];
  for (let id = 0; id < sets.length; id++) {
    spend(nI);
    const r: number[] = [];
    for (let i = 0; i < nI; i++) {
      if (trans[id * C + cls[i]!]! < 0) continue;
      const lo = bounds[i]!,
        hi = i + 1 < nI ? bounds[i + 1]! - 1 : MAX_CP;
      if (r.length && r[r.length - 1] === lo - 1) r[r.length - 1] = hi;
      else r.push(lo, hi);
    }
    live.push(Int32Array.from(r));
  }
  return new Regex(bounds, cls, C, Int32Array.from(trans), acc, dist, live);
}
