// Added tokens (<|im_start|>, <think>, ...): found in the raw text before normalization and BPE,
// so merges never produce them. Matching is leftmost-longest over all added tokens, as Hugging
// Face's AddedVocabulary does; lstrip/rstrip let a token swallow whitespace next to it.

export interface AddedToken {
  id: number;
  content: string;
  /** special tokens are the ones skipSpecialTokens drops and parseSpecial: false leaves as text */
  special: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  single_word?: boolean;
  /** matched on the normalized text instead of the raw text */
  normalized?: boolean;
}

/** One piece of input: plain text still to be tokenized, or an added token already resolved. */
export type Segment = string | number;

function escapeRe(s: string): string {
  // only syntax characters may be escaped in a `u` regex (\- is an error there)
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export class AddedTokenMatcher {
  private readonly re: RegExp | null;
  private readonly byContent = new Map<string, AddedToken>();
  private readonly strip: boolean;

  constructor(tokens: AddedToken[]) {
    for (const t of tokens) if (t.content.length > 0) this.byContent.set(t.content, t);
    // Longest first makes JS's leftmost-first alternation behave as leftmost-longest.
    const contents = [...this.byContent.keys()].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    this.strip = tokens.some((t) => t.lstrip || t.rstrip);
    this.re = contents.length ? new RegExp(contents.map(escapeRe).join('|'), 'gu') : null;
  }

  get size(): number {
    return this.byContent.size;
  }

  /** Split `text` into segments, appended to `out`. */
  split(text: string, out: Segment[]): void {
    const re = this.re;
    if (!re || text.length === 0) {
      if (text.length) out.push(text);
      return;
    }
    re.lastIndex = 0;
    let last = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const tok = this.byContent.get(m[0])!;
      let start = m.index,
        end = start + m[0].length;
      if (tok.single_word && !isSingleWord(text, start, end)) {
        // not a match here; a token may still start inside this one
        re.lastIndex = start + 1;
        continue;
      }
      if (this.strip) {
        if (tok.lstrip) while (start > last && isWs(text.charCodeAt(start - 1))) start--;
        if (tok.rstrip) while (end < text.length && isWs(text.charCodeAt(end))) end++;
        re.lastIndex = end;
      }
      if (start > last) out.push(text.slice(last, start));
      out.push(tok.id);
      last = end;
    }
    if (last < text.length) out.push(text.slice(last));
  }
}

function isWs(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

const WORD_CHAR = /[\p{L}\p{N}_]/u;
function isSingleWord(text: string, start: number, end: number): boolean {
  return !(start > 0 && WORD_CHAR.test(text[start - 1]!)) && !(end < text.length && WORD_CHAR.test(text[end]!));
}
