// Fine-tuning data: chat lines rendered with the model's template and masked to assistant turns,
// prompt/completion lines masked to the completion + EOS, and bad lines named by number.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { parseTrainData, readTrainData, type TrainSeq } from '../../src/train/data.js';
import { chatModelDir, expectError, FIXTURES, tmpDir } from '../helpers.js';

const tiny = loadTokenizer(path.join(FIXTURES, 'models/qwen3-tiny-tied'));
const jsonl = (...rows: unknown[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n');
const opts = { maxTokens: 1000, warn: () => {} };

/** The decoded text of each run of masked tokens. */
function spans(tok: typeof tiny, s: TrainSeq): string[] {
  const out: string[] = [];
  let cur: number[] = [];
  for (let t = 0; t <= s.tokens.length; t++) {
    if (t < s.tokens.length && s.mask[t]) cur.push(s.tokens[t]!);
    else if (cur.length) {
      out.push(tok.decode(cur));
      cur = [];
    }
  }
  return out;
}

test('prompt/completion: no template, loss on the completion and the EOS only', () => {
  const [s] = parseTrainData(jsonl({ prompt: 'Capital of France? ', completion: 'Paris' }), tiny, opts);
  const p = tiny.encode('Capital of France? '),
    c = tiny.encode('Paris');
  assert.deepEqual([...s!.tokens], [...p, ...c, 260]); // <|endoftext|>, the tokenizer's eos_token
  assert.deepEqual([...s!.mask], [...p.map(() => 0), ...c.map(() => 1), 1]);
  assert.deepEqual(spans(tiny, s!), ['Paris<|endoftext|>']);
  assert.equal(s!.line, 1);
});

test('chat: the Qwen3 template, assistant turns only, weight 0 skipped, each turn closed by <|im_end|>', () => {
  const tok = loadTokenizer(chatModelDir('qwen3'));
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: '2+2?' },
    { role: 'assistant', content: '4' },
  ];
  const [s] = parseTrainData(jsonl({ messages }), tok, opts);
  // the whole conversation as the template renders it (the last turn gets Qwen3's empty think block)
  assert.equal(
    tok.decode([...s!.tokens]),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n',
  );
  assert.deepEqual(spans(tok, s!), ['Hello!<|im_end|>', '<think>\n\n</think>\n\n4<|im_end|>']);
  const [w] = parseTrainData(jsonl({ messages: messages.map((m, i) => (i === 2 ? { ...m, weight: 0 } : m)) }), tok, opts);
  assert.deepEqual([...w!.tokens], [...s!.tokens]);
  assert.deepEqual(spans(tok, w!), ['<think>\n\n</think>\n\n4<|im_end|>']);
});

test('chat without a template in the folder: plain ChatML', () => {
  const [s] = parseTrainData(
    jsonl({
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Yo' },
      ],
    }),
    tiny,
    opts,
  );
  assert.equal(tiny.decode([...s!.tokens]), '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n');
  assert.deepEqual(spans(tiny, s!), ['Yo<|im_end|>']);
});

test('blank lines are skipped; line numbers count them', () => {
  const seqs = parseTrainData(jsonl({ prompt: 'a', completion: 'b' }, '', '  ', { prompt: 'c', completion: 'd' }), tiny, opts);
  assert.deepEqual(
    seqs.map((s) => s.line),
    [1, 4],
  );
});

test('bad lines: errors name the file and the line', () => {
  const ok = { prompt: 'a', completion: 'b' };
  const bad = (text: string, re: RegExp) => expectError(() => parseTrainData(text, tiny, opts, 'train.jsonl'), re);
  bad(jsonl(ok, '{"prompt": "a", '), /^train\.jsonl: line 2: not valid JSON/);
  bad(jsonl(ok, ok, { messages: [{ role: 'user', content: 'Hi' }] }), /^train\.jsonl: line 3: no assistant turn/);
  bad(jsonl({ text: 'hello' }), /^train\.jsonl: line 1: expected \{"messages": \[\.\.\.\]\} or \{"prompt"/);
  bad(jsonl(ok, '[1, 2]'), /line 2: expected a JSON object/);
  bad(jsonl({ prompt: 'a' }), /line 1: "completion" must be a non-empty string/);
  bad(jsonl({ prompt: 3, completion: 'x' }), /line 1: "prompt" must be a string/);
  bad(jsonl({ messages: [] }), /line 1: "messages" must be a non-empty array/);
  bad(
    jsonl({
      messages: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b', weight: 0.5 },
      ],
    }),
    /line 1: messages\[1\]\.weight must be 0 or 1/,
  );
  bad(jsonl({ messages: [{ role: 'assistant', content: 5 }] }), /line 1: .*messages\[0\]\.content must be a string/);
  bad('', /^train\.jsonl: no training examples \(the file is empty/);
  bad('\n\n', /no training examples/);
  bad(
    jsonl({
      messages: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b', weight: 0 },
      ],
    }),
    /no training examples/,
  );
});

test('over-long sequences: cut with a warning naming the line, or refused', () => {
  const warnings: string[] = [];
  const long = { prompt: 'x'.repeat(5), completion: 'y'.repeat(20) };
  const [s] = parseTrainData(jsonl({ prompt: 'a', completion: 'b' }, long).split('\n')[1]!, tiny, { maxTokens: 8, warn: (m) => warnings.push(m) });
  assert.equal(s!.tokens.length, 8);
  assert.match(warnings[0]!, /line 1: \d+ tokens cut to the limit of 8/);
  expectError(() => parseTrainData(jsonl(long), tiny, { maxTokens: 8, truncate: false }), /line 1: \d+ tokens, more than the limit of 8/);
  // cut before the completion starts: nothing to learn, skipped with a warning
  const w2: string[] = [];
  const seqs = parseTrainData(jsonl({ prompt: 'z'.repeat(30), completion: 'q' }, { prompt: 'a', completion: 'b' }), tiny, { maxTokens: 8, warn: (m) => w2.push(m) });
  assert.equal(seqs.length, 1);
  assert.match(w2.join('\n'), /line 1: no tokens to learn from/);
});

test('readTrainData names a missing file', () => {
  const dir = tmpDir();
  expectError(() => readTrainData(path.join(dir, 'nope.jsonl'), tiny, opts), /nope\.jsonl: cannot read the data file \(ENOENT\)/);
  fs.writeFileSync(path.join(dir, 'd.jsonl'), jsonl({ prompt: 'a', completion: 'b' }) + '\n');
  assert.equal(readTrainData(path.join(dir, 'd.jsonl'), tiny, opts).length, 1);
  fs.rmSync(dir, { recursive: true });
});
