// Token level: masks equal a brute-force check of every token, they are fast on the 152k Qwen
// vocabulary, and generate() with random-weight models yields text that parses and validates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../../src/generate/generate.js';
import type { Constraint } from '../../src/generate/generate.js';
import { jsonConstraint, jsonMatcher, toolCallConstraint, type ToolSpec } from '../../src/generate/constrain/index.js';
import { tokenTries, walkMask } from '../../src/generate/constrain/trie.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import type { CausalLM } from '../../src/models/model.js';
import { fixtureDir } from '../helpers.js';
import { fixtureTokenizer } from '../tokenizer/helpers.js';
import { makeAjv, SCHEMAS } from './constrain_helpers.js';

const ajv = makeAjv();
const qwen = fixtureTokenizer('qwen3');
const tinyDir = fixtureDir('models/qwen3-tiny-tied');
const tiny = loadModel(tinyDir);
const tinyTok = loadTokenizer(tinyDir);

async function run(model: CausalLM, tok: Tokenizer, c: Constraint, seed: number, max: number) {
  const ids: number[] = [];
  const it = generate(model, tok.encode('Answer in JSON:'), { temperature: 1, seed, max_tokens: max, constraint: c });
  for (;;) {
    const r = await it.next();
    if (r.done) return { ids, text: tok.decode(ids), finish: r.value };
    ids.push(r.value.token);
  }
}

test('masks equal a token-by-token brute force (fast string path included)', () => {
  const T = tokenTries(qwen);
  const special = new Set(qwen.addedTokens.map((a) => a.id));
  const cases: [object, string][] = [
    [SCHEMAS.person!, '{"name": "Jo'],
    [SCHEMAS.person!, '{"name": "J\xc3'.slice(0, 0) + '{"name": "é'],
    [SCHEMAS.person!, '{"name": "Ann", "age": 3'],
    [SCHEMAS.nested!, '{"id": "123e4567-e89b-12d3-a456-4266'],
    [SCHEMAS.unicode!, '{"text": "日本'],
    [SCHEMAS.anyObject!, '{"k": [1, {"'],
    [SCHEMAS.unions!, '{"a": '],
    [SCHEMAS.refs!, '{"root": {"v": 1, "kids": [{"v": 2}'],
  ];
  const enc = new TextEncoder();
  for (const [schema, prefix] of cases) {
    const m = jsonMatcher({ type: 'json_schema', schema });
    assert.ok(m.feed(prefix), prefix);
    const { mask, count } = walkMask(T, m.states);
    let n = 0;
    for (let id = 0; id < qwen.vocabSize; id++) {
      if (special.has(id)) {
        assert.equal(mask[id], 0);
        continue;
      }
      const ok = m.clone().feed(qwen.tokenBytes(id));
      if (ok) n++;
      if ((mask[id] === 1) !== ok) assert.fail(`${prefix}: token ${id} ${JSON.stringify(qwen.decode([id]))} mask ${mask[id]} brute ${ok}`);
    }
    assert.equal(count, n);
  }
  // mid-character: the bytes of 'é' split across tokens
  const m = jsonMatcher({ type: 'json_schema', schema: SCHEMAS.person! });
  m.feed(enc.encode('{"name": "').slice());
  assert.ok(m.feed(Uint8Array.of(0xc3)));
  const { mask } = walkMask(T, m.states);
  for (let id = 0; id < 5000; id++) if (!special.has(id)) assert.equal(mask[id] === 1, m.clone().feed(qwen.tokenBytes(id)), `token ${id}`);
});

test('mask time on the 152k vocabulary (reported; generous bound)', () => {
  const T = tokenTries(qwen);
  const states: [string, object, string][] = [
    ['object start', SCHEMAS.person!, ''],
    ['inside a string', SCHEMAS.person!, '{"name": "Jo'],
    ['after a key', SCHEMAS.person!, '{"name": "Jo", "age"'],
    ['value start', SCHEMAS.nested!, '{"id": "123e4567-e89b-12d3-a456-426614174000", "owner":'],
    ['in a number', SCHEMAS.nested!, '{"id": "123e4567-e89b-12d3-a456-426614174000", "owner": {"first": "a", "score": 1'],
    ['uuid string', SCHEMAS.nested!, '{"id": "123e'],
    ['json_object key', SCHEMAS.anyObject!, '{"k": [1, {"'],
    ['pattern string', SCHEMAS.unions!, '{"a": 1, "b": true, "c": null, "d": "fixed", "e": "Ab'],
  ];
  const report: string[] = [];
  for (const [label, schema, prefix] of states) {
    const m = jsonMatcher({ type: 'json_schema', schema });
    m.feed(prefix);
    walkMask(T, m.states); // warm up (JIT, per-tokenizer tables)
    const t = performance.now();
    for (let i = 0; i < 5; i++) walkMask(T, m.states);
    const ms = (performance.now() - t) / 5;
    report.push(`${label}: ${ms.toFixed(2)} ms`);
    assert.ok(ms < 100, `${label}: ${ms} ms`);
  }
  console.log(`# mask times (uncached walk, 151669 tokens): ${report.join('; ')}`);
});

const tinySchemas = ['person', 'nested', 'refs', 'unions', 'unicode', 'scalars', 'anyObject'];
test('random-weight tiny model: every schema, several seeds, output parses and validates', async () => {
  for (const name of tinySchemas) {
    const schema = SCHEMAS[name]!,
      validate = ajv.compile(schema);
    for (let seed = 0; seed < 4; seed++) {
      const c = jsonConstraint(tinyTok, { type: 'json_schema', schema }, { maxTokens: 150 });
      const r = await run(tiny, tinyTok, c, seed, 150);
      assert.equal(r.finish, 'stop', `${name} seed ${seed}: ${r.text}`);
      assert.ok(c.done());
      let v: unknown;
      assert.doesNotThrow(() => {
        v = JSON.parse(r.text);
      }, `${name} seed ${seed}: ${r.text}`);
      assert.ok(validate(v), `${name} seed ${seed}: ${r.text} ${JSON.stringify(validate.errors)}`);
    }
  }
});

test('json_object mode gives an object; a tight max_tokens still closes the JSON', async () => {
  for (let seed = 0; seed < 4; seed++) {
    const r = await run(tiny, tinyTok, jsonConstraint(tinyTok, { type: 'json_object' }, { maxTokens: 40 }), seed, 40);
    assert.equal(r.finish, 'stop', r.text);
    const v = JSON.parse(r.text);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), r.text);
  }
  // the minimum for `nested` is 122 bytes: at max_tokens 125 nearly every token is forced toward the end
  const validate = ajv.compile(SCHEMAS.nested!);
  const c = jsonConstraint(tinyTok, { type: 'json_schema', schema: SCHEMAS.nested! }, { maxTokens: 125 });
  assert.equal(c.minRemaining(), 122);
  const r = await run(tiny, tinyTok, c, 1, 125);
  assert.equal(r.finish, 'stop', r.text);
  assert.ok(validate(JSON.parse(r.text)), r.text);
  // without a budget the same model wanders off and runs out (this is what the budget prevents)
  const free = await run(tiny, tinyTok, jsonConstraint(tinyTok, { type: 'json_schema', schema: SCHEMAS.nested! }), 1, 125);
  assert.equal(free.finish, 'length');
});

test("real-vocabulary random model: schema output validates, tool calls follow Qwen's format", async () => {
  const model = loadModel(fixtureDir('models/qwen3-tiny-realvocab'));
  const schema = {
    type: 'object',
    properties: { title: { type: 'string', maxLength: 24 }, year: { type: 'integer' }, genre: { enum: ['drama', 'comedy', 'sci-fi'] }, rating: { type: ['number', 'null'] } },
    required: ['title', 'year', 'genre'],
  };
  const validate = ajv.compile(schema);
  for (const seed of [1, 2]) {
    const r = await run(model, qwen, jsonConstraint(qwen, { type: 'json_schema', schema }, { maxTokens: 36 }), seed, 36);
    assert.equal(r.finish, 'stop', r.text);
    assert.ok(validate(JSON.parse(r.text)), r.text);
  }
  const tools: ToolSpec[] = [
    {
      type: 'function',
      function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] } }, required: ['city', 'unit'] } },
    },
    {
      type: 'function',
      function: { name: 'search', parameters: { type: 'object', properties: { q: { type: 'string', maxLength: 12 }, n: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['q'] } },
    },
  ];
  const open = qwen.tokenToId('<tool_call>'),
    close = qwen.tokenToId('</tool_call>');
  assert.deepEqual([open, close], [151657, 151658]);
  const seen = new Set<string>();
  for (const [seed, name] of [
    [3, 'search'],
    [4, undefined],
    [5, undefined],
  ] as const) {
    const r = await run(model, qwen, toolCallConstraint(qwen, tools, name, { maxTokens: 48 }), seed, 48);
    assert.equal(r.finish, 'stop', r.text);
    assert.equal(r.ids[0], open);
    assert.equal(r.ids[r.ids.length - 1], close);
    const m = /^<tool_call>\n(.*)\n<\/tool_call>$/s.exec(r.text);
    assert.ok(m, r.text);
    const call = JSON.parse(m[1]!) as { name: string; arguments: unknown };
    assert.deepEqual(Object.keys(call), ['name', 'arguments']);
    if (name) assert.equal(call.name, name);
    const tool = tools.find((t) => t.function.name === call.name);
    assert.ok(tool, call.name);
    assert.ok(ajv.validate(tool.function.parameters!, call.arguments), r.text);
    seen.add(call.name);
  }
  assert.throws(() => toolCallConstraint(qwen, tools, 'nope'), /not among the tools/);
});

test('tokenizers without <tool_call> tokens get the tags as text; constraints are single use', async () => {
  const tools: ToolSpec[] = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'boolean' } }, required: ['x'] } } }];
  const c = toolCallConstraint(tinyTok, tools, 'f', { maxTokens: 80 });
  const r = await run(tiny, tinyTok, c, 2, 80);
  assert.equal(r.finish, 'stop');
  assert.match(r.text, /^<tool_call>\n\{"name": "f", "arguments": \{"x": ?(true|false)\}\}\n<\/tool_call>$/);
  assert.ok(c.done());
  assert.throws(() => c.accept(r.ids[0]!), /not allowed/);
  const j = jsonConstraint(tinyTok, { type: 'json_object' });
  assert.throws(() => j.accept(tinyTok.encode('x')[0]!), /not allowed/);
});
