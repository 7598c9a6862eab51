import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QwenOutputParser, type OutputEvent } from '../../src/chat/qwen_output.js';

/** Feed text in pieces of every size from 1 to 7 chars; all splits must give the same result. */
function parse(text: string, thinking = false): { reasoning: string; content: string; calls: { name: string; arguments: string }[] } {
  let first: ReturnType<typeof parse> | undefined;
  for (let size = 1; size <= 7; size++) {
    const p = new QwenOutputParser(thinking);
    const ev: OutputEvent[] = [];
    for (let i = 0; i < text.length; i += size) ev.push(...p.push(text.slice(i, i + size)));
    ev.push(...p.finish());
    const r = {
      reasoning: ev
        .filter((e) => e.kind === 'reasoning')
        .map((e) => (e as { text: string }).text)
        .join(''),
      content: ev
        .filter((e) => e.kind === 'content')
        .map((e) => (e as { text: string }).text)
        .join(''),
      calls: ev.flatMap((e) => (e.kind === 'tool_call' ? [{ name: e.call.name, arguments: e.call.arguments }] : [])),
    };
    if (first) assert.deepEqual(r, first, `piece size ${size}`);
    first = r;
  }
  return first!;
}

test('plain content passes through, trailing whitespace dropped', () => {
  assert.deepEqual(parse('Hello, world!\n'), { reasoning: '', content: 'Hello, world!', calls: [] });
  assert.deepEqual(parse('a < b and <thin ice>'), { reasoning: '', content: 'a < b and <thin ice>', calls: [] });
});

test('Qwen3 thinking: reasoning separated, newlines around the tags removed', () => {
  assert.deepEqual(parse('<think>\nLet me think.\n\nYes.\n</think>\n\nThe answer is 4.'), { reasoning: 'Let me think.\n\nYes.', content: 'The answer is 4.', calls: [] });
  assert.deepEqual(parse('<think>\n\n</think>\n\nHi'), { reasoning: '', content: 'Hi', calls: [] });
  // a template that opened <think> in the prompt
  assert.deepEqual(parse('hmm\n</think>\n\nok', true), { reasoning: 'hmm', content: 'ok', calls: [] });
});

test('tool calls: one or several, with content before; arguments re-serialised as JSON text', () => {
  const r = parse('I will check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>');
  assert.equal(r.content, 'I will check.');
  assert.deepEqual(r.calls, [
    { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' },
    { name: 'get_time', arguments: '{}' },
  ]);
  const t = parse('<think>\nuse a tool\n</think>\n\n<tool_call>\n{"name": "f", "arguments": {"x": "<tool_call>"}}\n</tool_call>');
  assert.equal(t.reasoning, 'use a tool');
  assert.equal(t.content, '');
  assert.deepEqual(t.calls, [{ name: 'f', arguments: '{"x":"<tool_call>"}' }]);
});

test('a broken or unclosed tool call is kept as content, not lost', () => {
  assert.deepEqual(parse('<tool_call>\n{"name": oops}\n</tool_call>'), { reasoning: '', content: '<tool_call>\n{"name": oops}\n</tool_call>', calls: [] });
  assert.deepEqual(parse('x <tool_call>\n{"name": "f"'), { reasoning: '', content: 'x <tool_call>\n{"name": "f"', calls: [] });
});
