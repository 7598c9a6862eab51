// String `pattern`s as attacks: a pattern is either refused up front with a message naming it,
// or compiled to an automaton whose every constrained step over the 152k Qwen vocabulary costs
// about what a plain string's does (one request with [\s\S]{1000} used to take ~1 s a token,
// growing). Masks stay exact: the pattern fast path equals a token-by-token brute force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonConstraint, jsonMatcher, validateSchema } from '../../src/generate/constrain/index.js';
import { regex, RegexError } from '../../src/generate/constrain/regex.js';
import { tokenTries, walkMask } from '../../src/generate/constrain/trie.js';
import { fixtureTokenizer } from '../tokenizer/helpers.js';
import { rng } from './constrain_helpers.js';

const qwen = fixtureTokenizer('qwen3');
const strSchema = (pattern: string, extra: object = {}) => ({ type: 'object', properties: { s: { type: 'string', pattern, ...extra } }, required: ['s'] });
const many = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join('|');

/** Nasty patterns; each must compile or be refused with RegexError, quickly either way. */
const NASTY: string[] = [
  '[\\s\\S]{1000}',
  '^[\\s\\S]{1000}$',
  '(a{50}){50}',
  '^(a{50}){50}$',
  '((a|b){30}){30}',
  '(?:x{1000}){1000}',
  `(${many(1000, (i) => String.fromCodePoint(0x4e00 + i))})*`,
  `^(${many(300, (i) => `w${i}`)})+$`,
  `(${many(1200, (i) => String.fromCodePoint(0x61 + (i % 26)) + i)})*z`,
  'a{0,1000}b{0,1000}c{0,1000}',
  '[\\s\\S]{0,1000}',
  '.{500}x.{500}',
  'a.{20}',
  'a.{12}',
  '(.*a){20}',
  '[^"]{1000}[\\d]{1000}',
];

test('nasty patterns compile or are refused naming the pattern, within a bounded time each', () => {
  const report: string[] = [];
  for (const p of NASTY) {
    const t = performance.now();
    let outcome: string;
    try {
      const r = regex(p);
      outcome = `${r.states} states`;
    } catch (e) {
      assert.ok(e instanceof RegexError, `${p}: ${e}`);
      assert.ok(e.message.includes(`/${p}/`), `the message names the pattern: ${e.message}`);
      assert.match(e.message, /too complex|too large/);
      outcome = 'refused';
    }
    const ms = performance.now() - t;
    report.push(`${p.slice(0, 24)}: ${outcome} ${ms.toFixed(0)} ms`);
    assert.ok(ms < 3000, `${p} took ${ms} ms`); // ~0.2 s at most on an idle core; generous for shared CI
  }
  console.log(`# ${report.join('; ')}`);
  // a refusal is cached like a success: asking again costs nothing
  const t = performance.now();
  assert.throws(() => regex('(a{50}){50}'), RegexError);
  assert.ok(performance.now() - t < 50);
  // the schema layer reports it at the pattern's path (the server answers 400 with this text)
  const msg = validateSchema(strSchema('(a{50}){50}'));
  assert.match(msg ?? '', /#\/properties\/s\/pattern: unsupported pattern: \/\(a\{50\}\)\{50\}\/ is too complex/);
});

test('legitimate patterns and formats still compile small and match like RegExp', () => {
  const r = rng(5);
  const cases: [string, string[]][] = [
    ['^[a-z]{2,8}$', ['ab', 'abcdefgh', 'a', 'abcdefghi', 'aB']],
    ['\\d{4}-\\d{2}-\\d{2}', ['2024-01-31', 'x2024-01-31y', '2024-1-31']],
    ['^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$', ['a.b@ex.org', 'a@b', '@x.org', 'ab@x.o']],
    ['[\\s\\S]{5}', ['abcd', 'abcde', 'é日本 \n']],
    ['^(?:ab|a)*c?$', ['abac', 'abb', '']],
    ['^[α-ω]{1,3}é?$', ['αβé', 'αβγδ', 'é']],
  ];
  for (const [p, samples] of cases) {
    const ours = regex(p),
      re = new RegExp(p, 'u');
    assert.ok(ours.states < 200, `${p}: ${ours.states} states`);
    const alphabet = [...new Set([...samples.join(''), 'a', '1', ' '])];
    const all = [...samples];
    for (let i = 0; i < 200; i++) {
      let s = '';
      for (let k = Math.floor(r() * 12); k > 0; k--) s += alphabet[Math.floor(r() * alphabet.length)];
      all.push(s);
    }
    for (const s of all) {
      let st = ours.start;
      for (const ch of s) if (st >= 0) st = ours.step(st, ch.codePointAt(0)!);
      assert.equal(st >= 0 && ours.acc[st]!, re.test(s), `/${p}/ on ${JSON.stringify(s)}`);
    }
  }
  // a dead end is dead at once: after 'a', /^a[^\s\S]|^b/ can never match, so 'a' is refused
  const dead = regex('^a[^\\s\\S]|^b');
  assert.equal(dead.step(dead.start, 0x61), -1);
  assert.ok(dead.step(dead.start, 0x62) >= 0);
});

test('pattern-string masks equal a token-by-token brute force (with and without a budget)', () => {
  const T = tokenTries(qwen);
  const special = new Set(qwen.addedTokens.map((a) => a.id));
  const cases: [object, string | Uint8Array][] = [
    [strSchema('[\\s\\S]{1000}'), '{"s": "ab'],
    [strSchema('^[a-z]{2,8}$'), '{"s": "abc'],
    [strSchema('^[a-z]{2,8}$'), '{"s": "'],
    [strSchema('\\d{4}-\\d{2}-\\d{2}'), '{"s": "x19'],
    [strSchema('^[α-ω日本]{1,5}x?$', { maxLength: 4 }), '{"s": "日α'],
    [strSchema('^[\\s\\S]{3,}$', { minLength: 5, maxLength: 9 }), '{"s": "ab'],
    [strSchema('^(?:é|\\u00e8|日)+$'), '{"s": "'],
    [{ type: 'object', properties: { s: { type: 'string', format: 'email' } }, required: ['s'] }, '{"s": "a.b@ex'],
    // mid-character: the first byte of 'é' (c3) or of '日' (e6) already fed
    [strSchema('^[\\s\\S]{1,6}$'), Uint8Array.of(...new TextEncoder().encode('{"s": "a'), 0xc3)],
    [strSchema('^(?:日|本|x)+$'), Uint8Array.of(...new TextEncoder().encode('{"s": "x'), 0xe6)],
    // several open strings at once (anyOf): each takes its own fast path, the masks are united
    [{ anyOf: [{ type: 'string', format: 'date' }, { type: 'string', pattern: '^2[0-9a-f]{3,}$' }, { type: 'string', maxLength: 5 }, { type: 'integer' }] }, '"20'],
    [{ type: 'array', items: { anyOf: [{ type: 'string', pattern: '^[\\s\\S]{1000}$' }, { type: 'string', minLength: 2 }, { type: 'number' }] } }, '["a'],
  ];
  let split = 0;
  for (const [schema, prefix] of cases) {
    const m = jsonMatcher({ type: 'json_schema', schema });
    assert.ok(m.feed(prefix), String(prefix));
    for (const limit of [Infinity, m.minRemaining() + 2]) {
      const { mask, count } = walkMask(T, m.states, limit);
      let n = 0;
      for (let id = 0; id < qwen.vocabSize; id++) {
        if (special.has(id)) {
          assert.equal(mask[id], 0);
          continue;
        }
        const c = m.clone();
        const ok = c.feed(qwen.tokenBytes(id)) && c.minRemaining() <= limit;
        if (ok) n++;
        if ((mask[id] === 1) !== ok) assert.fail(`${JSON.stringify(schema)} after ${prefix} limit ${limit}: token ${id} ${JSON.stringify(qwen.decode([id]))} mask ${mask[id]} brute ${ok}`);
      }
      assert.equal(count, n);
      assert.ok(n > 0);
      if (m.states.length > 1) split++;
    }
  }
  assert.equal(split, 4); // both anyOf cases had several stacks, at both limits
});

test('constrained steps with nasty (but accepted) patterns stay fast on the 152k vocabulary', () => {
  const enc = new TextEncoder();
  const report: string[] = [];
  for (const pattern of ['[\\s\\S]{1000}', '.{0,1000}', 'a.{12}', `(${many(1000, (i) => String.fromCodePoint(0x4e00 + i))})*`]) {
    const c = jsonConstraint(qwen, { type: 'json_schema', schema: strSchema(pattern) }, { maxTokens: 4000 });
    for (const id of qwen.encode('{"s": "')) c.accept(id);
    // tokens to write: varied text (ASCII, CJK, accents) so every step reaches a new DFA state
    const prefer = qwen.encode(' the quick brown fox 日本語のテキスト café naïve a1 b2 c3 Ω≈ç√ 🙂 jumps over');
    const times: number[] = [];
    for (let step = 0; step < 17; step++) {
      const t = performance.now();
      let pick = prefer.find((id) => c.allowed(id)); // the first call computes the whole mask
      if (pick === undefined) for (let id = 0; id < qwen.vocabSize && pick === undefined; id++) if (c.allowed(id)) pick = id;
      times.push(performance.now() - t);
      assert.ok(pick !== undefined);
      c.accept(pick);
      prefer.push(prefer.shift()!);
      assert.ok(enc.encode(qwen.decode([pick])).length > 0);
    }
    const first = times.shift()!,
      total = times.reduce((a, b) => a + b, 0);
    report.push(`${pattern.slice(0, 14)}: first ${first.toFixed(0)} ms, then ${(total / times.length).toFixed(1)} ms/step (max ${Math.max(...times).toFixed(0)})`);
    // ~10-25 ms a step here; the bound is for responsiveness under a loaded CI, not speed
    assert.ok(first < 5000, `${pattern}: first step ${first} ms`);
    assert.ok(total < 2000, `${pattern}: 16 steps took ${total} ms`);
  }
  console.log(`# ${report.join('; ')}`);
});

test('a mask that would take too long fails the request with a message instead of holding a core', () => {
  // 60 open strings at once (anyOf): each costs a full walk of the string-content trie
  const alts = Array.from({ length: 60 }, (_, i) => ({ type: 'string', pattern: `^[\\s\\S]{${i + 1},}$` }));
  const c = jsonConstraint(qwen, { type: 'json_schema', schema: { type: 'object', properties: { v: { anyOf: alts } }, required: ['v'] } });
  for (const id of qwen.encode('{"v": "')) c.accept(id);
  const t = performance.now();
  assert.throws(() => c.allowed(0), /too complex to enforce here .*work cap/);
  const ms = performance.now() - t;
  assert.ok(ms < 3000, `refusing took ${ms} ms`); // ~0.25 s of work at most, generous for shared CI
  // a handful of alternatives is fine
  const few = jsonConstraint(qwen, { type: 'json_schema', schema: { type: 'object', properties: { v: { anyOf: alts.slice(0, 5) } }, required: ['v'] } });
  for (const id of qwen.encode('{"v": "')) few.accept(id);
  assert.ok(few.allowed(qwen.encode('abc')[0]!));
});
