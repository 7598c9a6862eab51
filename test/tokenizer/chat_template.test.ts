// Chat templates against Python Jinja2's golden renders (HF settings), byte for byte, the expected
// error case, the VL template, Qwen's function-calling doc example, and the ids of every render.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QwenError } from '../../src/errors.js';
import { applyChatTemplate, chatTemplateFor, loadTokenizer, renderChat } from '../../src/tokenizer/index.js';
import { FIX, fixtureTokenizer, modelDirWith, readFixtureJson } from './helpers.js';

type Expected = string | { error: string };
interface Case {
  name: string;
  messages: unknown[];
  tools: unknown[] | null;
  add_generation_prompt: boolean;
  kwargs: Record<string, unknown>;
  expected: Record<string, Expected>;
}
const golden = readFixtureJson<{ cases: Case[] }>('chat-template-tests/golden-renders-jinja2.json');
const templateText = (name: string) => fs.readFileSync(path.join(FIX, 'chat-templates', `${name}.jinja`), 'utf8');

function render(template: string, c: Omit<Case, 'expected' | 'name'>): string {
  const { enable_thinking, ...extra } = c.kwargs;
  return renderChat(template, {
    messages: c.messages,
    tools: c.tools ?? undefined,
    addGenerationPrompt: c.add_generation_prompt,
    enableThinking: enable_thinking as boolean | undefined,
    bosToken: null,
    eosToken: '<|im_end|>',
    extra,
  });
}

test('golden renders: 17 conversations x 3 templates, byte for byte, and the expected error', () => {
  let renders = 0,
    errors = 0;
  for (const c of golden.cases) {
    for (const [name, exp] of Object.entries(c.expected)) {
      const label = `${c.name} / ${name}`;
      if (typeof exp === 'string') {
        assert.equal(render(templateText(name), c), exp, label);
        renders++;
      } else {
        // Jinja2: "argument of type 'NoneType' is not iterable" ('</think>' in content, content null)
        assert.throws(
          () => render(templateText(name), c),
          (e: unknown) => e instanceof QwenError && /chat template error/.test(e.message),
          label,
        );
        errors++;
      }
    }
  }
  assert.equal(renders, 44);
  assert.equal(errors, 1);
});

test('the templates in the tokenizer configs are the golden templates', () => {
  assert.equal(fixtureTokenizer('qwen2.5').chatTemplate, templateText('qwen2.5-instruct'));
  assert.equal(fixtureTokenizer('qwen3').chatTemplate, templateText('qwen3-post2025-07'));
  // applyChatTemplate hands the template tokenizer_config's bos/eos texts, as HF does
  const c = golden.cases.find((x) => x.name === 'tools_with_system_genprompt')!;
  const text = applyChatTemplate(fixtureTokenizer('qwen3'), { messages: c.messages, tools: c.tools, addGenerationPrompt: true });
  assert.equal(text, c.expected['qwen3-post2025-07']);
});

test('token ids of every golden render (Qwen3 tokenizer)', () => {
  const ids = readFixtureJson<{ items: { case: string; template: string; ids: number[] }[] }>('chat-template-tests/golden-renders-token-ids.json');
  const tok = fixtureTokenizer('qwen3');
  assert.equal(ids.items.length, 44);
  for (const item of ids.items) {
    const text = golden.cases.find((c) => c.name === item.case)!.expected[item.template] as string;
    assert.deepEqual(tok.encode(text), item.ids, `${item.case} / ${item.template}`);
    assert.equal(tok.decode(item.ids), text);
  }
});

test('Qwen2-VL / Qwen2.5-VL template', () => {
  const vl = readFixtureJson<{ cases: (Omit<Case, 'expected'> & { expected: string })[] }>('chat-template-tests/golden-renders-vl-jinja2.json');
  assert.equal(vl.cases.length, 4);
  for (const c of vl.cases) assert.equal(render(templateText('qwen2-vl-and-qwen2.5-vl-instruct'), { ...c, tools: null }), c.expected, c.name);
});

test("Qwen's function-calling doc example", () => {
  const doc = readFixtureJson<{ template: string; tools: unknown[]; messages: unknown[]; add_generation_prompt: boolean; expected_rendered: string }>(
    'chat-template-tests/qwen2.5-function-calling-doc-example.json',
  );
  const out = renderChat(templateText('qwen2.5-instruct'), { messages: doc.messages, tools: doc.tools, addGenerationPrompt: doc.add_generation_prompt, eosToken: '<|im_end|>' });
  assert.equal(out, doc.expected_rendered);
});

test('a folder without a chat template falls back to plain ChatML', () => {
  const dir = modelDirWith('qwen3', ['tokenizer.json'], { 'tokenizer_config.json': '{"eos_token": "<|im_end|>"}' });
  const tok = loadTokenizer(dir);
  const { template, fallback } = chatTemplateFor(tok);
  assert.equal(fallback, true);
  const messages = [
    { role: 'system', content: 'S' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: null },
  ];
  assert.equal(
    renderChat(template, { messages, addGenerationPrompt: true }),
    '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(chatTemplateFor(fixtureTokenizer('qwen3')).fallback, false);
  // newer folders keep the template in chat_template.jinja
  const jinja = modelDirWith('qwen3', ['tokenizer.json'], { 'tokenizer_config.json': '{}', 'chat_template.jinja': templateText('qwen3-original') });
  assert.equal(loadTokenizer(jinja).chatTemplate, templateText('qwen3-original'));
});

test('messages and tools of the wrong shape are named', () => {
  const t = templateText('qwen3-post2025-07');
  const bad: [unknown, unknown, RegExp][] = [
    [{ role: 'user' }, undefined, /messages must be a JSON array/],
    [[{ content: 'x' }], undefined, /messages\[0\]\.role must be a string, got undefined/],
    [['hello'], undefined, /messages\[0\] must be an object/],
    [[{ role: 'user', content: 5 }], undefined, /messages\[0\]\.content must be a string, null, or an array of parts, got number/],
    [[{ role: 'user', content: [{ text: 'x' }] }], undefined, /messages\[0\]\.content\[0\] must be an object with a string "type"/],
    [[{ role: 'assistant', content: '', tool_calls: {} }], undefined, /messages\[0\]\.tool_calls must be an array/],
    [[{ role: 'assistant', content: '', tool_calls: [{ function: { arguments: {} } }] }], undefined, /tool_calls\[0\] must be/],
    [[{ role: 'user', content: 'x' }], { name: 'f' }, /tools must be a JSON array/],
    [[{ role: 'user', content: 'x' }], [{ type: 'function', function: { description: 'no name' } }], /tools\[0\] must be/],
  ];
  for (const [messages, tools, re] of bad) {
    assert.throws(
      () => renderChat(t, { messages, tools }),
      (e: unknown) => e instanceof QwenError && re.test(e.message),
      String(re),
    );
  }
});

test('templates that raise or do not parse are clear errors', () => {
  const one = [{ role: 'user', content: 'x' }];
  assert.throws(
    () => renderChat("{{ raise_exception('Only user and assistant roles are supported!') }}", { messages: one }),
    (e: unknown) => e instanceof QwenError && e.message === 'chat template error: Only user and assistant roles are supported!',
  );
  assert.throws(
    () => renderChat('{% for m in messages %}', { messages: one }),
    (e: unknown) => e instanceof QwenError && /chat template cannot be parsed/.test(e.message),
  );
  // Qwen3's template raises (in Jinja2) on an empty conversation; we refuse it up front
  assert.throws(() => renderChat(templateText('qwen3-post2025-07'), { messages: [] }), /messages is empty/);
});
