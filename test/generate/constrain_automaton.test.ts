// The byte automaton alone: valid documents accepted, invalid ones rejected byte by byte, random
// walks always parse and validate (ajv), the regex engine agrees with RegExp, bad schemas refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonMatcher, validateSchema, type ByteMatcher } from '../../src/generate/constrain/index.js';
import { compileRegex, regex } from '../../src/generate/constrain/regex.js';
import { makeAjv, randomWalk, rng, SCHEMAS } from './constrain_helpers.js';

const ajv = makeAjv();
const schemaMatcher = (schema: object) => jsonMatcher({ type: 'json_schema', schema });
const accepts = (m: ByteMatcher, text: string) => {
  const c = m.clone();
  return c.feed(text) && c.complete();
};

test('hand-written valid documents are accepted, invalid ones rejected', () => {
  const cases: [object, string[], string[]][] = [
    [
      SCHEMAS.person!,
      ['{"name": "Ann", "age": 31}', '{"name":"Bo","age":0,"email":"a.b@ex-ample.org","tags":["x", "y"]}'],
      [
        '{"age": 31, "name": "Ann"}',
        '{"name": "", "age": 3}',
        '{"name": "Ann", "age": 131}',
        '{"name": "Ann", "age": -1}',
        '{"name": "Ann", "age": 3.5}',
        '{"name": "Ann", "age": 3, "x": 1}',
        '{"name": "Ann"}',
        '{"name": "Ann", "age": 3, "tags": ["a","b","c","d"]}',
        '{"name": "Ann",  "age": 3}',
        '{ "name": "Ann", "age": 3}',
        '{"name":\n"Ann","age":3}',
        '{"name": "A\u0001", "age": 3}',
      ],
    ],
    [
      SCHEMAS.nested!,
      ['{"id": "123e4567-e89b-12d3-a456-426614174000", "owner": {"first": "a", "score": -1.5e3}, "items": [{"sku": "B-2", "qty": 2}], "active": true}'],
      [
        '{"id": "123e4567-e89b-12d3-a456-42661417400", "owner": {"first": "a", "score": 1}, "items": [{"sku": "B-2", "qty": 2}], "active": true}',
        '{"id": "123e4567-e89b-12d3-a456-426614174000", "owner": {"first": "a", "score": 1}, "items": [], "active": true}',
        '{"id": "123e4567-e89b-12d3-a456-426614174000", "owner": {"first": "a", "score": 1}, "items": [{"sku": "D-4", "qty": 2}], "active": true}',
        '{"id": "123e4567-e89b-12d3-a456-426614174000", "owner": {"first": "a", "score": 1}, "items": [{"sku": "A-1", "qty": 0}], "active": true}',
      ],
    ],
    [
      SCHEMAS.refs!,
      ['{"root": {"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": []}]}, "when": "2024-02-28T23:59:60Z"}'.replace(':60Z', ':59Z'), '{"root":{"v":-7},"when":"1999-12-31T00:00:00.123+05:30"}'],
      [
        '{"root": {"v": 1}, "when": "2024-02-30T00:00:00Z"}',
        '{"root": {"v": 1}, "when": "2024-02-01T24:00:00Z"}',
        '{"root": {"v": 1}, "when": "2024-02-01T00:00:00"}',
        '{"root": {"kids": []}, "when": "2024-02-01T00:00:00Z"}',
      ],
    ],
    [
      SCHEMAS.unions!,
      [
        '{"a": 5, "b": true, "c": null, "d": "fixed", "e": "Abc-12"}',
        '{"a": "hey", "b": [1.5, 2], "c": "2023-04-30", "d": "fixed", "e": "Zz-00"}',
        '{"a": null, "b": [], "c": null, "d": "fixed", "e": "Q\\u0061-12"}',
      ],
      [
        '{"a": 5.5, "b": true, "c": null, "d": "fixed", "e": "Abc-12"}',
        '{"a": "toolong", "b": true, "c": null, "d": "fixed", "e": "Abc-12"}',
        '{"a": 1, "b": true, "c": "2023-04-31", "d": "fixed", "e": "Abc-12"}',
        '{"a": 1, "b": true, "c": null, "d": "other", "e": "Abc-12"}',
        '{"a": 1, "b": true, "c": null, "d": "fixed", "e": "abc-12"}',
      ],
    ],
    [
      SCHEMAS.unicode!,
      ['{"text": "日本語テキスト", "word": "日本語", "t": "12:00:00Z"}', '{"text": "a\\u00e9\\n", "word": "🙂", "t": "23:59:59.5-08:00"}'],
      ['{"text": "日本", "word": "café", "t": "12:00:00Z"}', '{"text": "\\ud83d\\ude00abc", "word": "café", "t": "12:00:00Z"}', '{"text": "abcdefghijklm", "word": "café", "t": "12:00:00Z"}'],
    ],
    [SCHEMAS.scalars!, ['[1, true]', '[null,-0.5,1e10,false]', '[0, 0]'], ['[1]', '[1,2,3,4,5]', '[01, 2]', '[1., 2]', '[1e100, 2]', '[.5, 1]', '["a", 1]']],
    [SCHEMAS.anyObject!, ['{}', '{"k": [1, {"x": null}], "k2": "v"}'], ['[]', '"x"', '{"k": }', '{"k": tru}']],
  ];
  for (const [schema, good, bad] of cases) {
    const m = schemaMatcher(schema);
    for (const g of good) {
      assert.ok(accepts(m, g), `should accept ${g}`);
      assert.ok(ajv.validate(schema, JSON.parse(g)), `test case itself invalid: ${g}`);
    }
    for (const b of bad) assert.ok(!accepts(m, b), `should reject ${b}`);
  }
});

test('a rejected byte is rejected at the first impossible byte, and the matcher is unchanged', () => {
  const m = schemaMatcher({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] });
  assert.ok(m.feed('{"n": 1'));
  assert.equal(m.feed('.'), false); // integer: no fraction
  assert.equal(m.feed('x'), false);
  assert.ok(m.feed('2}'));
  assert.ok(m.complete());
  assert.equal(m.canContinue(), false);
  assert.equal(m.minRemaining(), 0);
  const n = schemaMatcher({ type: 'number' });
  assert.ok(n.feed('12') && n.complete() && n.canContinue()); // a number may go on
});

test('random walks through the automaton always JSON.parse and validate (ajv)', () => {
  const r = rng(7);
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const validate = ajv.compile(schema);
    for (let i = 0; i < 40; i++) {
      const m = schemaMatcher(schema);
      const text = new TextDecoder('utf-8', { fatal: true }).decode(randomWalk(m, r));
      let v: unknown;
      assert.doesNotThrow(() => {
        v = JSON.parse(text);
      }, `${name}: ${text}`);
      assert.ok(validate(v), `${name}: ${text}: ${JSON.stringify(validate.errors)}`);
    }
  }
  const obj = jsonMatcher({ type: 'json_object' });
  for (let i = 0; i < 40; i++) {
    const text = new TextDecoder().decode(randomWalk(obj.clone(), r));
    const v = JSON.parse(text);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), text);
  }
});

test('mutated documents: whatever the matcher accepts, JSON.parse and ajv accept too', () => {
  const r = rng(11);
  const alphabet = ['"', ',', ':', '{', '}', '[', ']', ' ', '1', '-', '.', 'e', 'a', '\\', 'n', 'u', 'é'];
  let accepted = 0,
    total = 0;
  for (const schema of Object.values(SCHEMAS)) {
    const validate = ajv.compile(schema);
    const m = schemaMatcher(schema);
    for (let i = 0; i < 30; i++) {
      const base = new TextDecoder().decode(randomWalk(m.clone(), r));
      for (let k = 0; k < 10; k++) {
        const p = Math.floor(r() * (base.length + 1)),
          c = alphabet[Math.floor(r() * alphabet.length)]!;
        const op = Math.floor(r() * 3);
        const t = op === 0 ? base.slice(0, p) + c + base.slice(p) : op === 1 ? base.slice(0, p) + base.slice(p + 1) : base.slice(0, p) + c + base.slice(p + 1);
        total++;
        if (!accepts(m, t)) continue;
        accepted++;
        let v: unknown;
        assert.doesNotThrow(() => {
          v = JSON.parse(t);
        }, t);
        assert.ok(validate(v), `accepted but invalid: ${t}`);
      }
    }
  }
  assert.ok(accepted > 20 && accepted < total, `${accepted}/${total}`); // both outcomes exercised
});

test('the regex engine agrees with RegExp on random strings', () => {
  const r = rng(3);
  const patterns = ['^a+b$', '^(ab|a)*c?$', '^[a-c]{2,3}$', 'b', '^\\d{2}-\\w+$', '^[^a]*$', '^(?:x|yz?){1,3}$', '^é.[b-d]?$', '^a|b$', '^[\\s\\S]{0,2}$'];
  const alphabet = ['a', 'b', 'c', 'x', 'y', 'z', '1', '2', '-', 'é', ' '];
  for (const p of patterns) {
    const re = new RegExp(p, 'u'),
      ours = regex(p);
    for (let i = 0; i < 300; i++) {
      let s = '';
      const n = Math.floor(r() * 6);
      for (let k = 0; k < n; k++) s += alphabet[Math.floor(r() * alphabet.length)];
      let st = ours.start;
      for (const ch of s) {
        if (st >= 0) st = ours.step(st, ch.codePointAt(0)!);
      }
      assert.equal(st >= 0 && ours.acc[st]!, re.test(s), `/${p}/ on ${JSON.stringify(s)}`);
    }
  }
  assert.throws(() => compileRegex('(a'), /unbalanced/);
  assert.throws(() => compileRegex('a(?=b)'), /lookaround/);
  assert.throws(() => compileRegex('(a)\\1'), /unsupported escape/);
});

test('minRemaining is the exact length of the shortest completion on fixed schemas', () => {
  const m = schemaMatcher({ type: 'object', properties: { a: { type: 'string', minLength: 2 }, b: { enum: ['xy', 'z'] } }, required: ['a', 'b'] });
  assert.equal(m.minRemaining(), '{"a":"..","b":"z"}'.length);
  m.feed('{"a":"');
  assert.equal(m.minRemaining(), '..","b":"z"}'.length);
  const walkShortest = (mm: ByteMatcher) => {
    let n = 0;
    while (!mm.complete()) {
      const mr = mm.minRemaining();
      let moved = false;
      for (let b = 0; b < 256 && !moved; b++) {
        const c = mm.clone();
        if (c.feed(Uint8Array.of(b)) && c.minRemaining() === mr - 1) {
          mm.states = c.states;
          moved = true;
        }
      }
      assert.ok(moved, 'some byte must reduce minRemaining by one');
      n++;
    }
    return n;
  };
  for (const schema of Object.values(SCHEMAS)) {
    const mm = schemaMatcher(schema);
    const mr = mm.minRemaining();
    assert.equal(walkShortest(mm), mr);
  }
});

test('bad or unsupported schemas give a clear message naming the keyword and path', () => {
  const bad: [unknown, RegExp][] = [
    [{ type: 'object', properties: { a: { type: 'integer', multipleOf: 3 } } }, /#\/properties\/a\/multipleOf: multipleOf is not supported/],
    [{ type: 'strin' }, /#\/type: unknown type "strin"/],
    [{ $ref: 'http://example.com/s.json' }, /only local \$refs/],
    [{ $ref: '#/$defs/missing' }, /does not resolve/],
    [{ type: 'string', pattern: '(?<=a)b' }, /#\/pattern: unsupported pattern/],
    [{ type: 'array', items: [{ type: 'string' }] }, /tuples/],
    [{ type: 'array', uniqueItems: true }, /uniqueItems/],
    [{ if: { type: 'string' }, then: {} }, /if\/then\/else/],
    [{ type: 'string', minLength: 5, maxLength: 2 }, /minLength is greater than maxLength/],
    [{ type: 'integer', minimum: 1.2, maximum: 1.8 }, /no integer lies within/],
    [{ enum: [] }, /enum must be a non-empty array/],
    [{ type: 'string', enum: [1, 2] }, /no enum\/const value has the allowed type/],
    [{ $defs: { n: { type: 'object', properties: { n: { $ref: '#/$defs/n' } }, required: ['n'] } }, $ref: '#/$defs/n' }, /no finite value/],
    [{ $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }, /circular \$ref/],
    ['object', /must be an object or a boolean/],
    [{ allOf: [{ type: 'string' }, { minLength: 2 }] }, /allOf is only supported with a single subschema/],
  ];
  for (const [s, re] of bad) {
    const msg = validateSchema(s);
    assert.ok(msg !== undefined, `should refuse ${JSON.stringify(s)}`);
    assert.match(msg!, re);
  }
  for (const s of Object.values(SCHEMAS)) assert.equal(validateSchema(s), undefined);
  assert.equal(validateSchema({ type: 'string', format: 'uri', description: 'x', 'x-vendor': 1 }), undefined); // loose format, ignored extras
  assert.throws(() => jsonMatcher({ type: 'json_schema', schema: { type: 'nope' } }), /unknown type/);
  assert.throws(() => jsonMatcher({ type: 'text' } as never), /json_object' or 'json_schema/);
});
