// Qwen3.5's XML tool calls: the stream parser in 'xml' mode, schema typing of the values, the
// format read from chat templates, and agreement with what the official template renders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QwenOutputParser, type OutputEvent, type ParserOptions } from '../../src/chat/qwen_output.js';
import { parseXmlToolCall } from '../../src/chat/xml_tool_call.js';
import { toolCallFormat } from '../../src/chat/engine.js';
import { CHATML_TEMPLATE, renderChat } from '../../src/tokenizer/chat_template.js';
import { FIXTURES, rng } from '../helpers.js';

const QWEN35 = fs.readFileSync(path.join(FIXTURES, 'chat', 'qwen3.5-chat_template.jinja'), 'utf8');

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string' },
          days: { type: 'integer' },
          scale: { type: 'number' },
          metric: { type: 'boolean' },
          note: { type: ['string', 'null'] },
          opts: { type: 'object' },
          tags: { type: 'array', items: { type: 'string' } },
          unit: { enum: ['c', 'f'] },
          code: { $ref: '#/$defs/code' },
          mixed: { anyOf: [{ type: 'integer' }, { type: 'string' }] },
          free: {},
        },
        required: ['city'],
        $defs: { code: { type: 'string', pattern: '^[0-9]+$' } },
      },
    },
  },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } } },
];

type Parsed = { reasoning: string; content: string; calls: { name: string; arguments: unknown }[] };

/** Whole, then in random pieces (seeded, 1..9 chars) several times: every split must agree. */
function parse(text: string, opts: ParserOptions = {}): Parsed {
  const run = (pieces: string[]): Parsed => {
    const p = new QwenOutputParser({ format: 'xml', tools: TOOLS, ...opts });
    const ev: OutputEvent[] = [];
    for (const s of pieces) ev.push(...p.push(s));
    ev.push(...p.finish());
    return {
      reasoning: ev
        .filter((e) => e.kind === 'reasoning')
        .map((e) => (e as { text: string }).text)
        .join(''),
      content: ev
        .filter((e) => e.kind === 'content')
        .map((e) => (e as { text: string }).text)
        .join(''),
      calls: ev.flatMap((e) => (e.kind === 'tool_call' ? [{ name: e.call.name, arguments: JSON.parse(e.call.arguments) }] : [])),
    };
  };
  const whole = run([text]);
  const r = rng(text.length);
  for (let k = 0; k < 6; k++) {
    const pieces: string[] = [];
    for (let i = 0; i < text.length; ) {
      const n = 1 + Math.floor(r() * 9);
      pieces.push(text.slice(i, i + n));
      i += n;
    }
    assert.deepEqual(run(pieces), whole, `split ${JSON.stringify(pieces)}`);
  }
  return whole;
}

const call = (name: string, params: [string, string][]) => `<tool_call>\n<function=${name}>\n${params.map(([k, v]) => `<parameter=${k}>\n${v}\n</parameter>\n`).join('')}</function>\n</tool_call>`;

test('one call: name and typed arguments; content before it, its trailing blank line dropped', () => {
  const r = parse(
    `I will check.\n\n${call('get_weather', [
      ['city', 'Paris'],
      ['days', '3'],
    ])}`,
  );
  assert.deepEqual(r, { reasoning: '', content: 'I will check.', calls: [{ name: 'get_weather', arguments: { city: 'Paris', days: 3 } }] });
});

test('values are typed by the tool schema: strings raw, everything else JSON', () => {
  const r = parse(
    call('get_weather', [
      ['city', '  New York\nline two  '],
      ['days', '7'],
      ['scale', '-1.5e2'],
      ['metric', 'true'],
      ['note', 'null'],
      ['opts', '{"a": [1, {"b": null}]}'],
      ['tags', '["x", "y"]'],
      ['unit', 'f'],
      ['code', '0042'],
      ['mixed', '12'],
      ['free', '{"k": 1}'],
    ]),
  );
  assert.deepEqual(r.calls[0]!.arguments, {
    city: '  New York\nline two  ',
    days: 7,
    scale: -150,
    metric: true,
    note: null,
    opts: { a: [1, { b: null }] },
    tags: ['x', 'y'],
    unit: 'f',
    code: '0042',
    mixed: 12,
    free: { k: 1 },
  });
  // a string schema keeps text that looks like JSON; a mixed one keeps text that is not its other types
  const s = parse(
    call('get_weather', [
      ['city', '123'],
      ['note', 'not null'],
      ['mixed', '"quoted"'],
      ['free', 'plain words'],
    ]),
  );
  assert.deepEqual(s.calls[0]!.arguments, { city: '123', note: 'not null', mixed: '"quoted"', free: 'plain words' });
  // text that does not parse as the declared JSON type stays a string (vLLM's fallback); an
  // unknown parameter, or any parameter of an unknown tool, is a string
  const f = parse(
    call('get_weather', [
      ['days', 'three'],
      ['opts', '{broken'],
      ['extra', '5'],
    ]),
  );
  assert.deepEqual(f.calls[0]!.arguments, { days: 'three', opts: '{broken', extra: '5' });
  assert.deepEqual(parse(call('nope', [['n', '5']])).calls, [{ name: 'nope', arguments: { n: '5' } }]);
  // only the format's newlines are removed: a value's own leading / trailing newlines stay
  assert.deepEqual(parse(call('get_time', [['zone', '\nUTC\n']])).calls[0]!.arguments, { zone: '\nUTC\n' });
  assert.deepEqual(parse(call('get_time', [['zone', '']])).calls[0]!.arguments, { zone: '' });
  // no parameters at all
  assert.deepEqual(parse('<tool_call>\n<function=get_time>\n</function>\n</tool_call>').calls, [{ name: 'get_time', arguments: {} }]);
});

test('several calls, separated by newlines, in order; reasoning before them', () => {
  const text = `<think>\nNeed both.\n</think>\n\n${call('get_weather', [['city', 'Oslo']])}\n${call('get_time', [['zone', 'CET']])}`;
  const r = parse(text);
  assert.equal(r.reasoning, 'Need both.');
  assert.equal(r.content, '');
  assert.deepEqual(r.calls, [
    { name: 'get_weather', arguments: { city: 'Oslo' } },
    { name: 'get_time', arguments: { zone: 'CET' } },
  ]);
});

test('tags inside a string value are part of it; a JSON value may hold </parameter> in a string', () => {
  const r = parse(
    call('get_weather', [
      ['city', 'a </tool_call> b <tool_call> <think> </function>'],
      ['opts', '{"s": "x</parameter>y"}'],
    ]),
  );
  assert.deepEqual(r.calls, [{ name: 'get_weather', arguments: { city: 'a </tool_call> b <tool_call> <think> </function>', opts: { s: 'x</parameter>y' } } }]);
  assert.equal(r.content, '');
});

test('a call right after an opened <think> ends the reasoning (forced calls); a broken one stays reasoning', () => {
  const r = parse(`Let me see.\n${call('get_time', [['zone', 'UTC']])}`, { thinking: true });
  assert.deepEqual(r, { reasoning: 'Let me see.', content: '', calls: [{ name: 'get_time', arguments: { zone: 'UTC' } }] });
  const b = parse('hmm <tool_call> is a tag\n</think>\n\nok', { thinking: true });
  assert.deepEqual(b, { reasoning: 'hmm <tool_call> is a tag', content: 'ok', calls: [] });
});

test('malformed blocks are kept as content, never lost', () => {
  const cases = [
    '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>', // JSON in XML mode
    '<tool_call>\n<function=get_time>\n<parameter=zone>\nUTC\n</parameter>\n</tool_call>', // no </function>
    '<tool_call>\n<function=get_time>\n<parameter=zone>\nUTC\n</function>\n</tool_call>', // unclosed parameter, closed at the end
    '<tool_call>\n<function=>\n</function>\n</tool_call>', // no name
    '<tool_call>\n<function=get_time>\nstray text\n</function>\n</tool_call>',
    '<tool_call>\n<function=get_time>\n</function>\ntrailing\n</tool_call>',
  ];
  for (const c of cases) assert.deepEqual(parse(`Before.\n${c}\nAfter.`), { reasoning: '', content: `Before.\n${c}\nAfter.`, calls: [] }, c);
  // unclosed at the end of the answer
  const u = '<tool_call>\n<function=get_time>\n<parameter=zone>\nUT';
  assert.deepEqual(parse(`x\n${u}`), { reasoning: '', content: `x\n${u}`, calls: [] });
  // a good call after a broken one still counts
  const g = parse(`${cases[1]}\n${call('get_time', [['zone', 'UTC']])}`);
  assert.equal(g.content, cases[1]);
  assert.deepEqual(g.calls, [{ name: 'get_time', arguments: { zone: 'UTC' } }]);
});

test('lenient about spacing the model may vary: no newlines around values, spaces in tags', () => {
  const r = parseXmlToolCall('<function=get_weather><parameter=city>Rome</parameter><parameter= days >2</parameter></function>', TOOLS);
  assert.deepEqual(r && [r.name, JSON.parse(r.arguments)], ['get_weather', { city: 'Rome', days: 2 }]);
  assert.match(r!.id, /^call_/);
});

test('the format comes from the chat template text', () => {
  const qwen3 = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tokenizer', 'qwen3', 'tokenizer_config.json'), 'utf8')).chat_template as string;
  assert.equal(toolCallFormat(QWEN35), 'xml');
  assert.equal(toolCallFormat(qwen3), 'json');
  assert.equal(toolCallFormat(CHATML_TEMPLATE), 'json');
  for (const f of fs.readdirSync(path.join(FIXTURES, 'tokenizer', 'chat-templates'))) {
    assert.equal(toolCallFormat(fs.readFileSync(path.join(FIXTURES, 'tokenizer', 'chat-templates', f), 'utf8')), 'json', f);
  }
});

test('what the official template renders for past tool calls parses back to the same calls', () => {
  const args = [{ city: 'Paris', days: 3, metric: false, tags: ['a', 'b'], opts: { x: { y: 1 } }, note: null }, { zone: 'multi\nline' }];
  const messages = [
    { role: 'user', content: 'Weather and time?' },
    {
      role: 'assistant',
      content: 'Checking.',
      tool_calls: [
        { type: 'function', function: { name: 'get_weather', arguments: args[0] } },
        { type: 'function', function: { name: 'get_time', arguments: args[1] } },
      ],
    },
    { role: 'tool', content: 'sunny' },
  ];
  const prompt = renderChat(QWEN35, { messages, tools: TOOLS });
  const turn = prompt.slice(prompt.lastIndexOf('<|im_start|>assistant\n') + '<|im_start|>assistant\n'.length, prompt.lastIndexOf('<|im_end|>\n<|im_start|>user'));
  assert.match(turn, /Checking\.\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n<\/parameter>\n/);
  // the template prints None for null (Python's str); the parser reads the JSON null spelling only
  const r = parse(turn.replace('\nNone\n', '\nnull\n'));
  assert.equal(r.content.replace(/^<think>\s*<\/think>\s*/, ''), 'Checking.');
  assert.deepEqual(r.calls, [
    { name: 'get_weather', arguments: args[0] },
    { name: 'get_time', arguments: args[1] },
  ]);
});
