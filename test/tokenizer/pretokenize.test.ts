// The split regex translated from Oniguruma to JS: Oniguruma's \s is Unicode White_Space (U+0085
// yes, U+FEFF no, unlike JS \s) and (?i:...) folds case (ſ matches s), as Hugging Face applies it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QWEN2_PATTERN, RegexSplitter, translatePattern } from '../../src/tokenizer/pretokenize.js';

const split = new RegexSplitter(QWEN2_PATTERN);
const pieces = (s: string) => {
  const out: string[] = [];
  split.forEach(s, (p) => out.push(p));
  return out;
};

test('contractions, case-insensitively, digits one by one, punctuation runs, newlines', () => {
  assert.deepEqual(pieces("I'll see you're OK'S"), ['I', "'ll", ' see', ' you', "'re", ' OK', "'S"]);
  assert.deepEqual(pieces("it'ſ"), ['it', "'ſ"]);
  assert.deepEqual(pieces('x=12345'), ['x', '=', '1', '2', '3', '4', '5']);
  assert.deepEqual(pieces('Hello, world!!\n\n  ok'), ['Hello', ',', ' world', '!!\n\n', ' ', ' ok']);
  assert.deepEqual(pieces('a \r\n  b'), ['a', ' \r\n', ' ', ' b']);
  assert.deepEqual(pieces(''), []);
});

test('whitespace is Unicode White_Space, as in Oniguruma', () => {
  // U+00A0 and U+0085 are whitespace: the run before a word keeps its last space for the word
  assert.deepEqual(pieces('a\u00a0\u00a0b'), ['a', '\u00a0', '\u00a0b']);
  assert.deepEqual(pieces('a\u0085\u0085b'), ['a', '\u0085', '\u0085b']);
  // U+FEFF is not whitespace (JS \s says it is): it is punctuation-like
  assert.deepEqual(pieces('a\ufeff\ufeffb'), ['a', '\ufeff\ufeff', 'b']);
});

test('translation of the Oniguruma subset', () => {
  assert.equal(translatePattern("(?i:'s|'ll)"), "(?:'[sSſ]|'[lL][lL])");
  assert.equal(translatePattern('[^\\s\\p{L}]+|\\s+(?!\\S)'), '[^\\p{White_Space}\\p{L}]+|\\p{White_Space}+(?!\\P{White_Space})');
  assert.equal(translatePattern('\\d+\\w'), '\\p{Nd}+[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]');
});
