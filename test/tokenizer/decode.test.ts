// Decoding details: byte tokens that split characters (U+FFFD like HF errors="replace"), the
// streaming decoder holding back incomplete UTF-8, BOM kept, skipSpecialTokens, bad ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QwenError } from '../../src/errors.js';
import { BYTE_TO_CHAR } from '../../src/tokenizer/bytes.js';
import { StreamDecoder } from '../../src/tokenizer/index.js';
import { fixtureTokenizer } from './helpers.js';

const tok = fixtureTokenizer('qwen3');
/** id of the single-byte token for byte b */
const byteId = (b: number) => tok.tokenToId(String.fromCharCode(BYTE_TO_CHAR[b]!))!;
const llama = [0xf0, 0x9f, 0xa6, 0x99].map(byteId); // 🦙 spelled one byte per token

test('GPT-2 byte table: printable bytes spell themselves, the rest are shifted past U+0100', () => {
  assert.equal(String.fromCharCode(BYTE_TO_CHAR[0x41]!), 'A');
  assert.equal(String.fromCharCode(BYTE_TO_CHAR[0x20]!), '\u0120'); // Ġ
  assert.equal(String.fromCharCode(BYTE_TO_CHAR[0x0a]!), '\u010a'); // Ċ
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  assert.deepEqual(tok.encode(' '), [byteId(0x20)]);
  assert.equal(byteId(0x20), 220);
  assert.equal(byteId(0x0a), 198);
});

test('a character split over byte tokens decodes whole; a partial one becomes U+FFFD', () => {
  assert.equal(tok.decode(llama), '🦙');
  assert.equal(tok.decode(llama.slice(0, 2)), '\ufffd', 'F0 9F is one maximal invalid subpart');
  assert.equal(tok.decode([byteId(0x80), byteId(0x41)]), '\ufffdA');
  assert.equal(tok.decode([byteId(0xe4), byteId(0x41), byteId(0xe4)]), '\ufffdA\ufffd');
  assert.deepEqual([...tok.tokenBytes(llama[0]!)], [0xf0]);
});

test('the stream decoder holds back incomplete characters', () => {
  const d = new StreamDecoder(tok);
  assert.deepEqual(
    llama.map((id) => d.push(id)),
    ['', '', '', '🦙'],
  );
  assert.equal(d.flush(), '');
  // incomplete at the end: flush gives what decode gives
  assert.equal(d.push(byteId(0xf0)) + d.push(byteId(0x9f)), '');
  assert.equal(d.flush(), '\ufffd');
  // an invalid byte is emitted at once, not held
  assert.equal(d.push(byteId(0x80)), '\ufffd');
  // whole tokens stream as they come
  const ids = tok.encode('Hello, 世界!');
  assert.equal(ids.map((id) => d.push(id)).join('') + d.flush(), 'Hello, 世界!');
});

test('a leading U+FEFF (BOM) survives encode/decode and streaming', () => {
  const s = '\ufeffhello';
  const ids = tok.encode(s);
  assert.equal(tok.decode(ids), s);
  const d = new StreamDecoder(tok);
  assert.equal(ids.map((id) => d.push(id)).join('') + d.flush(), s);
});

test('skipSpecialTokens drops special tokens only (Qwen3 <think> is not special)', () => {
  const ids = tok.encode('<|im_start|>assistant\n<think>\n\n</think>\n\nHi<|im_end|><|endoftext|>');
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'assistant\n<think>\n\n</think>\n\nHi');
  assert.equal(tok.decode(ids), '<|im_start|>assistant\n<think>\n\n</think>\n\nHi<|im_end|><|endoftext|>');
  const d = new StreamDecoder(tok, { skipSpecialTokens: true });
  assert.equal(ids.map((id) => d.push(id)).join('') + d.flush(), 'assistant\n<think>\n\n</think>\n\nHi');
});

test('ids out of range or not integers are clear errors', () => {
  for (const bad of [151669, 1e9, -1, 1.5, NaN]) {
    assert.throws(
      () => tok.decode([1, bad]),
      (e: unknown) => e instanceof QwenError && /out of range/.test(e.message) && e.message.includes(String(bad)),
      String(bad),
    );
    assert.throws(() => new StreamDecoder(tok).push(bad), QwenError);
  }
  assert.equal(tok.idToToken(-1), undefined);
});
