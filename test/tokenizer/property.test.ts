// Property tests on seeded random Unicode text: decode(encode(s)) == s (for NFC s), the ids equal
// those of @huggingface/tokenizers (an independent implementation that passes the same vectors),
// and streamed pieces concatenate to decode(ids) without ever splitting a character.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { StreamDecoder, type Tokenizer } from '../../src/tokenizer/index.js';
import { fixtureModelDir, fixtureTokenizer, rng, type Family } from './helpers.js';

// code point ranges to draw from: ASCII weighted up, plus the awkward corners of the split regex
// (Unicode whitespace such as U+0085 / U+00A0 / U+3000, U+FEFF, combining marks, astral planes)
const RANGES: [number, number][] = [
  [0x20, 0x7e],
  [0x09, 0x0d],
  [0x80, 0x2ff],
  [0x300, 0x36f],
  [0x400, 0x4ff],
  [0x590, 0x6ff],
  [0x900, 0x97f],
  [0xe00, 0xe7f],
  [0x1ab0, 0x1aff],
  [0x20d0, 0x20ff],
  [0x4e00, 0x9fff],
  [0x3040, 0x30ff],
  [0xac00, 0xd7a3],
  [0x2000, 0x206f],
  [0x3000, 0x303f],
  [0xe000, 0xf8ff],
  [0xfe00, 0xfffd],
  [0x1f300, 0x1faff],
  [0x10000, 0x10ffff],
  [0x85, 0x85],
  [0xa0, 0xa0],
  [0xfeff, 0xfeff],
];

function randomText(r: () => number, maxLen: number): string {
  let s = '';
  const len = 1 + Math.floor(r() * maxLen);
  for (let i = 0; i < len; i++) {
    const [lo, hi] = r() < 0.5 ? RANGES[0]! : RANGES[Math.floor(r() * RANGES.length)]!;
    let cp = lo + Math.floor(r() * (hi - lo + 1));
    if (cp >= 0xd800 && cp < 0xe000) cp = 0x20; // lone surrogates are not text
    s += String.fromCodePoint(cp);
    if (r() < 0.04) s += "'" + 'sStTrReEvVmMlLdD'[Math.floor(r() * 16)]; // contractions
    if (r() < 0.02) s += ['\r\n', '  \n', '\t\t', '    '][Math.floor(r() * 4)];
  }
  return s.normalize('NFC');
}

function hfTokenizer(family: Family): HfTokenizer {
  const dir = fixtureModelDir(family);
  const read = (f: string) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>;
  return new HfTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function streamed(tok: Tokenizer, ids: number[], skipSpecialTokens = false): string[] {
  const d = new StreamDecoder(tok, { skipSpecialTokens });
  const pieces = ids.map((id) => d.push(id));
  pieces.push(d.flush());
  return pieces;
}

const SEEDS: Record<Family, number> = { qwen3: 1234, 'qwen2.5': 5678, 'qwen3.5': 3535 };
for (const family of ['qwen3', 'qwen2.5', 'qwen3.5'] as Family[]) {
  test(`${family}: random NFC text round-trips and matches @huggingface/tokenizers`, () => {
    const tok = fixtureTokenizer(family),
      hf = hfTokenizer(family);
    const r = rng(SEEDS[family]);
    for (let k = 0; k < 1500; k++) {
      const s = randomText(r, k % 10 === 0 ? 400 : 40);
      const ids = tok.encode(s);
      assert.equal(tok.decode(ids), s, `round trip #${k} ${JSON.stringify(s)}`);
      assert.deepEqual(ids, hf.encode(s).ids, `vs @huggingface/tokenizers #${k} ${JSON.stringify(s)}`);
    }
    // long words take the heap path of our BPE; long whitespace runs are single words
    for (const s of [
      ' '.repeat(5000),
      'a'.repeat(3001),
      '\n'.repeat(777),
      'ab'.repeat(999) + ' x',
      '🦙'.repeat(300),
      'x' + ' \t'.repeat(100) + 'y',
      'abcdefghijklmnopqrstuvwxyzàéîõüßçñ'.repeat(20),
      '0123456789'.repeat(50),
    ]) {
      assert.deepEqual(tok.encode(s), hf.encode(s).ids, `long word ${JSON.stringify(s.slice(0, 20))}... (${s.length})`);
    }
  });
}

for (const family of ['qwen3', 'qwen3.5'] as Family[])
  test(`${family}: streamed pieces of valid text are whole characters and concatenate to the decode`, () => {
    const tok = fixtureTokenizer(family);
    const r = rng(99);
    for (let k = 0; k < 500; k++) {
      const s = randomText(r, 60);
      const ids = tok.encode(s);
      const pieces = streamed(tok, ids);
      assert.equal(pieces.join(''), tok.decode(ids));
      for (const p of pieces) {
        // a split character would show up as U+FFFD (the text has none) or a lone surrogate
        assert.ok(!p.includes('\ufffd'), `piece ${JSON.stringify(p)} of ${JSON.stringify(s)}`);
        assert.ok(!LONE_SURROGATE.test(p), `piece ${JSON.stringify(p)} has half a surrogate pair`);
      }
    }
  });

for (const family of ['qwen3', 'qwen3.5'] as Family[])
  test(`${family}: streamed pieces of random ids (invalid UTF-8 included) concatenate to decode(ids)`, () => {
    const tok = fixtureTokenizer(family);
    const r = rng(7);
    // many single-byte tokens (ids 0..255 are the byte tokens) so that sequences split characters
    const pick = () => (r() < 0.6 ? Math.floor(r() * 256) : Math.floor(r() * tok.vocabSize));
    for (let k = 0; k < 500; k++) {
      const ids = Array.from({ length: 1 + Math.floor(r() * 30) }, pick);
      for (const skip of [false, true]) {
        assert.equal(streamed(tok, ids, skip).join(''), tok.decode(ids, { skipSpecialTokens: skip }), `ids ${ids.join(',')} skip=${skip}`);
      }
    }
  });
