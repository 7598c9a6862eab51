// The official Qwen3.5 chat template against Python Jinja2's golden renders (transformers'
// settings; scripts/qwen35-golden-renders.py): every conversation byte for byte, an error where
// Jinja2 raises, and the Python semantics (str(), strip) the template relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QwenError } from '../../src/errors.js';
import { applyChatTemplate, loadTokenizer, renderChat } from '../../src/tokenizer/index.js';
import { FIX, fixtureTokenizer, modelDirWith, readFixtureJson } from './helpers.js';

type Expected = string | { error: string };
interface Case {
  name: string;
  messages: unknown[];
  tools: unknown[] | null;
  add_generation_prompt: boolean;
  kwargs: Record<string, unknown>;
  expected: Expected;
}
interface Semantics {
  template: string;
  x: unknown;
  expected: string;
}
const golden = readFixtureJson<{ cases: Case[]; semantics: Semantics[] }>('qwen3.5/golden-renders-jinja2.json');
const template = fs.readFileSync(path.join(FIX, 'qwen3.5', 'chat_template.jinja'), 'utf8');

function render(c: Case): string {
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

test('Qwen3.5 golden renders: every conversation byte for byte', () => {
  const ok = golden.cases.filter((c) => typeof c.expected === 'string');
  assert.ok(ok.length >= 30, `${ok.length} renders`);
  for (const c of ok) assert.equal(render(c), c.expected, c.name);
});

test("Qwen3.5 template raises where Jinja2 raises, with the template's own message", () => {
  const bad = golden.cases.filter((c) => typeof c.expected !== 'string');
  assert.ok(bad.length >= 9, `${bad.length} error cases`);
  for (const c of bad) {
    const py = (c.expected as { error: string }).error.replace(/^\w+: /, '');
    assert.throws(
      () => render(c),
      (e: unknown) => {
        assert.ok(e instanceof QwenError, `${c.name}: ${String(e)}`);
        // an empty list is refused before the template runs, with our own wording
        if (c.messages.length === 0) return /messages is empty/.test(e.message);
        assert.equal(e.message, `chat template error: ${py}`, c.name);
        return true;
      },
      c.name,
    );
  }
});

test('thinking switch: the 0.8B template defaults to non-thinking, enable_thinking: true opens <think>', () => {
  const get = (n: string) => golden.cases.find((c) => c.name === n)!.expected as string;
  assert.ok(get('genprompt_thinking_default').endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n'));
  assert.equal(get('genprompt_enable_thinking_false'), get('genprompt_thinking_default'));
  assert.ok(get('genprompt_enable_thinking_true').endsWith('<|im_start|>assistant\n<think>\n'));
});

test('Python semantics used by templates: str(), strip(chars), trim, items, tojson', () => {
  assert.ok(golden.semantics.length >= 15);
  for (const s of golden.semantics) {
    assert.equal(renderChat(s.template, { messages: [{ role: 'user', content: '' }], extra: { x: s.x } }), s.expected, `${s.template} with ${JSON.stringify(s.x)}`);
  }
});

test('the template reaches the tokenizer: chat_template.jinja, applyChatTemplate, token ids', () => {
  const tok = fixtureTokenizer('qwen3.5');
  assert.equal(tok.chatTemplate, template);
  assert.equal(tok.eosToken, '<|im_end|>');
  assert.equal(tok.bosToken, undefined);
  const c = golden.cases.find((x) => x.name === 'multi_turn_reasoning_and_tools')!;
  const text = applyChatTemplate(tok, { messages: c.messages, tools: c.tools, addGenerationPrompt: true, enableThinking: true });
  assert.equal(text, c.expected);
  // without chat_template.jinja the template comes from tokenizer_config.json (the same text)
  const dir = modelDirWith('qwen3.5', ['tokenizer.json', 'tokenizer_config.json']);
  assert.equal(loadTokenizer(dir).chatTemplate, template);
  // the markup the template writes is made of single added tokens
  const ids = tok.encode(text);
  for (const t of ['<|im_start|>', '<|im_end|>', '<think>', '<tool_call>', '</tool_call>', '<tool_response>', '</tool_response>']) {
    assert.ok(ids.includes(tok.tokenToId(t)!), t);
  }
  assert.equal(tok.decode(ids), text);
});
