// Forced tool calls in Qwen3.5's XML format: random documents of the byte automaton, and token
// generation with random-weight models, always parse (src/chat/xml_tool_call.ts) into arguments
// that validate against the tool's schema (ajv).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../../src/generate/generate.js';
import type { Constraint } from '../../src/generate/generate.js';
import { toolCallConstraint, toolCallMatcher, validateTools, type ToolSpec } from '../../src/generate/constrain/index.js';
import { XML_STRING_MAX } from '../../src/generate/constrain/xml_tool.js';
import { parseXmlToolCall } from '../../src/chat/xml_tool_call.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import type { CausalLM } from '../../src/models/model.js';
import { fixtureDir } from '../helpers.js';
import { fixtureTokenizer } from '../tokenizer/helpers.js';
import { makeAjv, randomWalk, rng, SCHEMAS } from './constrain_helpers.js';

const ajv = makeAjv();
const dec = new TextDecoder();
const fn = (name: string, parameters: object): ToolSpec => ({ type: 'function', function: { name, parameters } });

const TOOLS: ToolSpec[] = [
  fn('weather', {
    type: 'object',
    properties: {
      city: { type: 'string', minLength: 1, maxLength: 10 },
      days: { type: 'integer', minimum: 1, maximum: 14 },
      unit: { enum: ['c', 'f'] },
      note: { type: ['string', 'null'], maxLength: 6 },
      code: { $ref: '#/$defs/code' },
      when: { type: 'string', format: 'date' },
    },
    required: ['city', 'days'],
    $defs: { code: { type: 'string', pattern: '^[A-Z]{2}-\\d{2}$' } },
  }),
  fn('mixed', {
    type: 'object',
    properties: {
      n: { type: ['string', 'integer'], maxLength: 4, minimum: 50 },
      o: {
        anyOf: [
          { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] },
          { type: 'string', maxLength: 5 },
        ],
      },
      b: { type: ['boolean', 'string'], maxLength: 3 },
      any: {},
      e: { enum: ['x', 2, null] },
    },
    required: ['n', 'o', 'b', 'any', 'e'],
  }),
  fn('noargs', { type: 'object', properties: {} }),
  ...Object.entries(SCHEMAS)
    .filter(([, s]) => (s as { type?: string }).type === 'object' && 'properties' in s)
    .map(([k, s]) => fn(k, s)),
];

/** A byte document of the automaton -> the parsed call, checked against the tool's schema. */
function check(text: string, tools: ToolSpec[], name?: string) {
  const m = /^<tool_call>(.*)<\/tool_call>$/s.exec(text);
  assert.ok(m, text);
  const call = parseXmlToolCall(m[1]!, tools);
  assert.ok(call, `does not parse: ${text}`);
  if (name) assert.equal(call.name, name);
  const tool = tools.find((t) => t.function.name === call.name);
  assert.ok(tool, call.name);
  const args = JSON.parse(call.arguments);
  assert.ok(ajv.validate(tool.function.parameters!, args), `${text}\n${JSON.stringify(args)}\n${JSON.stringify(ajv.errors)}`);
  return { name: call.name, args: args as Record<string, unknown> };
}

test('random documents of the XML automaton parse into arguments valid for each tool', () => {
  const r = rng(7);
  for (const t of TOOLS) {
    for (let i = 0; i < 25; i++) {
      const m = toolCallMatcher(TOOLS, t.function.name, 'xml');
      check(dec.decode(randomWalk(m, r, 80)), TOOLS, t.function.name);
    }
  }
});

test('the shape: schema order, required always there, optional ones sometimes; tool_choice required picks any tool', () => {
  const r = rng(3);
  const seen = new Map<string, number>(),
    names = new Set<string>();
  for (let i = 0; i < 60; i++) {
    const text = dec.decode(randomWalk(toolCallMatcher(TOOLS.slice(0, 1), 'weather', 'xml'), r, 160));
    assert.match(text, /^<tool_call>\n<function=weather>\n<parameter=city>\n[\s\S]*\n<\/parameter>\n<parameter=days>\n\d+\n<\/parameter>\n(<parameter=[\s\S]*)?<\/function>\n<\/tool_call>$/);
    const { args } = check(text, TOOLS);
    for (const k of Object.keys(args)) seen.set(k, (seen.get(k) ?? 0) + 1);
    const order = ['city', 'days', 'unit', 'note', 'code', 'when'];
    assert.deepEqual(
      Object.keys(args),
      order.filter((k) => k in args),
    );
  }
  assert.equal(seen.get('city'), 60);
  assert.equal(seen.get('days'), 60);
  for (const k of ['unit', 'note', 'code', 'when']) assert.ok((seen.get(k) ?? 0) > 5 && seen.get(k)! < 55, `${k}: ${seen.get(k)}`);
  for (let i = 0; i < 30; i++) names.add(check(dec.decode(randomWalk(toolCallMatcher(TOOLS.slice(0, 3), undefined, 'xml'), r, 40)), TOOLS).name);
  assert.deepEqual([...names].sort(), ['mixed', 'noargs', 'weather']);
});

test('what the automaton refuses: a string value never holds </parameter>; risky raw text for mixed types', () => {
  const m = toolCallMatcher([fn('f', { type: 'object', properties: { s: { type: 'string' } }, required: ['s'] })], 'f', 'xml');
  assert.ok(m.feed('<tool_call>\n<function=f>\n<parameter=s>\na </tool_call> </parameter'));
  assert.equal(m.clone().feed('>'), false);
  assert.ok(m.clone().feed('\n</parameter>\n</function>\n</tool_call>'));
  assert.equal(m.clone().feed('\n</parameter>\n<parameter=s>'), false); // no repeats, no unknown names
  // ['string', 'integer'] with minimum 50: raw text must not start like a number (it would parse as one)
  const x = toolCallMatcher(TOOLS, 'mixed', 'xml');
  assert.ok(x.feed('<tool_call>\n<function=mixed>\n<parameter=n>\n'));
  assert.equal(x.clone().feed('7\n'), false);
  assert.equal(x.clone().feed(' 7'), false);
  assert.ok(x.clone().feed('77\n</parameter>'));
  assert.ok(x.clone().feed('ab\n</parameter>'));
  // raw strings without maxLength stop at XML_STRING_MAX characters
  const big = toolCallMatcher([fn('f', { type: 'object', properties: { s: { type: 'string' } }, required: ['s'] })], 'f', 'xml');
  assert.ok(big.feed(`<tool_call>\n<function=f>\n<parameter=s>\n${'a'.repeat(XML_STRING_MAX)}`));
  assert.equal(big.clone().feed('a'), false);
});

test('tools that XML calls cannot express are refused with a reason (HTTP 400 upstream)', () => {
  assert.match(validateTools([fn('f', { anyOf: [{ type: 'object' }, { type: 'null' }] })], 'f', 'xml')!, /object schema/);
  assert.match(validateTools([fn('f', { type: 'object', properties: { 'a>b': { type: 'string' } } })], undefined, 'xml')!, /parameter name "a>b"/);
  assert.equal(validateTools([fn('f', { anyOf: [{ type: 'object' }, { type: 'null' }] })], 'f', 'json'), undefined);
  assert.match(validateTools([fn('f', { type: 'object', properties: { s: { type: 'string', minLength: XML_STRING_MAX + 1 } } })], 'f', 'xml')!, /minLength/);
  assert.match(validateTools([fn('f', { type: 'object', properties: { s: { enum: ['a</parameter>'] } } })], 'f', 'xml')!, /no value/);
  // only the forced tool matters when one is named
  assert.equal(validateTools([fn('f', { type: 'object' }), fn('g', { type: 'array' })], 'f', 'xml'), undefined);
  assert.throws(() => toolCallConstraint(fixtureTokenizer('qwen3'), [fn('g', { type: 'array' })], 'g', { format: 'xml' }), /object schema/);
});

async function run(model: CausalLM, tok: Tokenizer, c: Constraint, seed: number, max: number) {
  const ids: number[] = [];
  const it = generate(model, tok.encode('Call a tool:'), { temperature: 1, seed, max_tokens: max, constraint: c });
  for (;;) {
    const r = await it.next();
    if (r.done) return { ids, text: tok.decode(ids), finish: r.value };
    ids.push(r.value.token);
  }
}

test('tiny byte-level vocabulary (no <tool_call> token): the tags are spelled as text, output validates', async () => {
  const dir = fixtureDir('models/qwen2-tiny-tied');
  const model = loadModel(dir),
    tok = loadTokenizer(dir);
  assert.equal(tok.tokenToId('<tool_call>'), undefined);
  for (const [seed, name] of [
    [1, 'weather'],
    [2, 'mixed'],
    [3, undefined],
    [4, 'person'],
    [5, 'unions'],
  ] as const) {
    // one byte per token at worst: the budget is the shortest call plus room to wander (the
    // fixture's context is 256 positions, so the longest schemas are left to the automaton test)
    const max = toolCallConstraint(tok, TOOLS, name, { format: 'xml' }).minRemaining() + 80;
    const c = toolCallConstraint(tok, TOOLS, name, { maxTokens: max, format: 'xml' });
    const r = await run(model, tok, c, seed, max);
    assert.equal(r.finish, 'stop', r.text);
    assert.ok(c.done());
    check(r.text, TOOLS, name);
  }
});

test('real Qwen vocabulary: <tool_call> / </tool_call> are the added tokens, the body validates', async () => {
  const model = loadModel(fixtureDir('models/qwen3-tiny-realvocab'));
  const qwen = fixtureTokenizer('qwen3');
  const open = qwen.tokenToId('<tool_call>'),
    close = qwen.tokenToId('</tool_call>');
  for (const [seed, name] of [
    [1, 'weather'],
    [2, undefined],
  ] as const) {
    const max = toolCallConstraint(qwen, TOOLS.slice(0, 3), name, { format: 'xml' }).minRemaining() + 20;
    const r = await run(model, qwen, toolCallConstraint(qwen, TOOLS.slice(0, 3), name, { maxTokens: max, format: 'xml' }), seed, max);
    assert.equal(r.finish, 'stop', r.text);
    assert.equal(r.ids[0], open);
    assert.equal(r.ids[r.ids.length - 1], close);
    check(r.text, TOOLS, name);
  }
});
