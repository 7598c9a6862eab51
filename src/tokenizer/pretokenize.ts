// Pre-tokenization: cut normalized text into the words BPE works on, with the split regex of the
// tokenizer.json (Hugging Face compiles it with Oniguruma; we translate it to a JS `u` regex).
import { fail } from '../errors.js';

/** Qwen2 / Qwen2.5 / Qwen3 split regex, as written in their tokenizer.json. */
export const QWEN2_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Qwen3.5 / Qwen3.6 split regex (their tokenizer.json; llama.cpp's tokenizer.ggml.pre "qwen35"):
 * Qwen2's with combining marks kept inside words ([\p{L}\p{M}]+) and out of punctuation runs, so
 * Devanagari, Thai or Arabic with harakat stay whole words instead of breaking at every mark.
 */
export const QWEN35_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's pattern (ByteLevel pre-tokenizer with use_regex: true). */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Oniguruma's \s is Unicode White_Space (it includes U+0085 and excludes U+FEFF, unlike JS \s).
const ESCAPES: Record<string, string> = {
  s: '\\p{White_Space}',
  S: '\\P{White_Space}',
  d: '\\p{Nd}',
  D: '\\P{Nd}',
};
const WORD = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';

// Under Unicode case folding these non-ASCII letters match ASCII ones: ſ (U+017F) folds to s,
// the Kelvin sign (U+212A) to k. Oniguruma applies that folding inside (?i:...) (its test suite:
// x2("(?i)s", "\xc5\xbf", 0, 2)), so Hugging Face splits "'ſ" as a contraction; llama.cpp's
// hand-written Qwen2 splitter does not (an edge case no real text hits).
const FOLD_EXTRA: Record<string, string> = { s: '\u017f', k: '\u212a' };

/** Translate an Oniguruma pattern (the subset tokenizer.json files use) to a JS `u`-mode source. */
export function translatePattern(src: string): string {
  let out = '';
  let inClass = 0;
  let ci = 0; // depth of (?i: groups we are inside, counted by open parens
  const ciStack: boolean[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) fail(`pre-tokenizer regex ends with a lone backslash: ${src}`);
      i++;
      if (n === 'w' || n === 'W') {
        out += inClass ? (n === 'w' ? WORD : fail(`pre-tokenizer regex: \\W inside a class is not supported: ${src}`)) : n === 'w' ? `[${WORD}]` : `[^${WORD}]`;
      } else if (ESCAPES[n]) {
        out += ESCAPES[n];
      } else if ((n === 'p' || n === 'P') && src[i + 1] === '{') {
        const end = src.indexOf('}', i);
        out += src.slice(i - 1, end + 1);
        i = end;
      } else {
        out += '\\' + n;
      }
      continue;
    }
    if (inClass) {
      if (c === '[') inClass++;
      else if (c === ']') inClass--;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = 1;
      out += c;
      if (src[i + 1] === '^') {
        out += '^';
        i++;
      }
      if (src[i + 1] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(') {
      if (src.startsWith('(?i:', i)) {
        ciStack.push(true);
        ci++;
        out += '(?:';
        i += 3;
        continue;
      }
      ciStack.push(false);
      out += c;
      continue;
    }
    if (c === ')') {
      if (ciStack.pop()) ci--;
      out += c;
      continue;
    }
    if (ci > 0 && /[A-Za-z]/.test(c)) {
      const lo = c.toLowerCase();
      out += `[${lo}${lo.toUpperCase()}${FOLD_EXTRA[lo] ?? ''}]`;
      continue;
    }
    out += c;
  }
  return out;
}

/** Splits text into pre-tokenized pieces (Split behaviour "Isolated": matches and the gaps between them). */
export class RegexSplitter {
  readonly re: RegExp;
  constructor(readonly pattern: string) {
    try {
      this.re = new RegExp(translatePattern(pattern), 'gu');
    } catch (e) {
      fail(`pre-tokenizer regex cannot be compiled (${(e as Error).message}): ${pattern}`);
    }
  }

  /** Call `f` on each piece of `text`, in order; pieces concatenate to `text`. */
  forEach(text: string, f: (piece: string) => void): void {
    // One String.match call is much faster than an exec() loop; it is exact when the matches
    // cover the text, which the Qwen and GPT-2 patterns always do. Otherwise use the slow path.
    const all = text.match(this.re);
    if (all) {
      let len = 0;
      for (let i = 0; i < all.length; i++) len += all[i]!.length;
      if (len === text.length) {
        for (let i = 0; i < all.length; i++) f(all[i]!);
        return;
      }
    } else if (text.length === 0) {
      return;
    }
    this.re.lastIndex = 0;
    let last = 0;
    for (let m = this.re.exec(text); m; m = this.re.exec(text)) {
      if (m[0].length === 0) {
        this.re.lastIndex++;
        continue;
      }
      if (m.index > last) f(text.slice(last, m.index));
      f(m[0]);
      last = m.index + m[0].length;
    }
    if (last < text.length) f(text.slice(last));
  }
}
