// The tokenize / detokenize / template commands: JSON output, stdin read byte for byte, exact
// template text, and bad input as QwenErrors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QwenError } from '../../src/errors.js';
import { run as detokenize, parseIds } from '../../src/cli/detokenize.js';
import { run as template } from '../../src/cli/template.js';
import { run as tokenize } from '../../src/cli/tokenize.js';
import { fixtureModelDir, fixtureTokenizer, modelDirWith, readFixtureJson, tempDir } from './helpers.js';
import { capture } from '../helpers.js';

const model = fixtureModelDir('qwen3');

/** Run a command in a child process with `input` on stdin (for the stdin paths). */
function spawnCommand(name: string, args: string[], input: Buffer) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const js = path.resolve(here, '../../src/cli', `${name}.js`);
  const mod = fs.existsSync(js) ? js : js.replace(/\.js$/, '.ts'); // compiled, or under tsx
  const script = `const m = await import(${JSON.stringify(new URL(`file://${mod}`).href)}); await m.run(JSON.parse(process.env.QWEN_ARGS));`;
  const flags = mod.endsWith('.ts') ? ['--import', 'tsx'] : [];
  return spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], { input, env: { ...process.env, QWEN_ARGS: JSON.stringify(args) }, encoding: 'utf8' });
}

test('tokenize --text prints {"ids": [...]}, with added tokens matched', async () => {
  const { out } = await capture(() => tokenize(['--model', model, '--text', '<|im_start|>user\nHello!<|im_end|>']));
  assert.equal(out, '{"ids":[151644,872,198,9707,0,151645]}\n');
  const split = await capture(() => tokenize(['--model', model, '--text', '<|im_end|>', '--split-special-tokens']));
  const ids = (JSON.parse(split.out) as { ids: number[] }).ids;
  assert.ok(ids.length > 1 && ids.every((i) => i < 151643));
  assert.equal((await capture(() => tokenize(['--model', model, '--text', '']))).out, '{"ids":[]}\n');
});

test('tokenize reads stdin byte for byte: trailing newlines, leading spaces, a BOM', () => {
  const text = '\ufeff  Hello\r\n世界 🦙\n\n';
  const r = spawnCommand('tokenize', ['--model', model], Buffer.from(text, 'utf8'));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { ids: number[] }).ids, fixtureTokenizer('qwen3').encode(text));
  const bad = spawnCommand('tokenize', ['--model', model], Buffer.from([0x61, 0xff, 0x62]));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /stdin is not valid UTF-8/);
});

test('detokenize --ids prints {"text": ...}', async () => {
  assert.equal((await capture(() => detokenize(['--model', model, '--ids', '151644,872,198,9707,0,151645']))).out, JSON.stringify({ text: '<|im_start|>user\nHello!<|im_end|>' }) + '\n');
  assert.equal((await capture(() => detokenize(['--model', model, '--ids', '[151644, 9707]', '--skip-special-tokens']))).out, '{"text":"Hello"}\n');
  assert.equal((await capture(() => detokenize(['--model', model, '--ids', '']))).out, '{"text":""}\n');
  assert.deepEqual(parseIds(' 1, 2 3,'), [1, 2, 3]);
});

test('detokenize and tokenize refuse bad input clearly', async () => {
  const rejects = (f: () => Promise<void>, re: RegExp) => assert.rejects(capture(f), (e: unknown) => e instanceof QwenError && re.test(e.message));
  await rejects(() => detokenize(['--model', model, '--ids', '1,x,3']), /--ids: "x" is not a token id/);
  await rejects(() => detokenize(['--model', model, '--ids', '1,-2']), /"-2" is not a token id/);
  await rejects(() => detokenize(['--model', model, '--ids', '151669']), /151669 is out of range/);
  await rejects(() => detokenize(['--ids', '1']), /--model is required/);
  await rejects(() => detokenize(['--model', model]), /--ids is required/);
  await rejects(() => tokenize(['--model', path.join(tempDir('cli'), 'missing'), '--text', 'x']), /no such (file or folder|model folder or file)/);
});

test('template prints the golden render exactly (no newline added), tools and thinking switches', async () => {
  const golden = readFixtureJson<{ cases: { name: string; messages: unknown; tools: unknown; expected: Record<string, string> }[] }>('chat-template-tests/golden-renders-jinja2.json');
  const d = tempDir('cli');
  const write = (name: string, v: unknown) => {
    const f = path.join(d, name);
    fs.writeFileSync(f, JSON.stringify(v));
    return f;
  };
  const tools = golden.cases.find((c) => c.name === 'tools_user_genprompt')!;
  const out = await capture(() => template(['--model', model, '--messages', write('m.json', tools.messages), '--tools', write('t.json', tools.tools)]));
  assert.equal(out.out, tools.expected['qwen3-post2025-07']);
  const noThink = golden.cases.find((c) => c.name === 'q3_enable_thinking_false')!;
  assert.equal((await capture(() => template(['--model', model, '--messages', write('n.json', noThink.messages), '--no-thinking']))).out, noThink.expected['qwen3-post2025-07']);
  const last = golden.cases.find((c) => c.name === 'q3_last_assistant_with_think')!;
  assert.equal((await capture(() => template(['--model', model, '--messages', write('l.json', last.messages), '--no-generation-prompt']))).out, last.expected['qwen3-post2025-07']);
});

test('template: fallback note, bad files and bad messages', async () => {
  const d = tempDir('cli');
  const msgs = path.join(d, 'm.json');
  fs.writeFileSync(msgs, '[{"role": "user", "content": "Hi"}]');
  const bare = modelDirWith('qwen3', ['tokenizer.json']);
  const r = await capture(() => template(['--model', bare, '--messages', msgs]));
  assert.equal(r.out, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  assert.match(r.err, /has no chat template; using plain ChatML/);
  const rejects = (args: string[], re: RegExp) =>
    assert.rejects(
      capture(() => template(['--model', model, ...args])),
      (e: unknown) => e instanceof QwenError && re.test(e.message),
    );
  await rejects(['--messages', path.join(d, 'nope.json')], /--messages .*nope\.json: no such file/);
  fs.writeFileSync(path.join(d, 'bad.json'), '[{"role": ');
  await rejects(['--messages', path.join(d, 'bad.json')], /bad\.json: not valid JSON/);
  fs.writeFileSync(path.join(d, 'obj.json'), '{"role": "user"}');
  await rejects(['--messages', path.join(d, 'obj.json')], /messages must be a JSON array/);
  fs.writeFileSync(path.join(d, 'tools.json'), '{"name": "f"}');
  await rejects(['--messages', msgs, '--tools', path.join(d, 'tools.json')], /tools must be a JSON array/);
  await rejects([], /--messages is required/);
});

test('tokenize and template on a Qwen3.5 folder (tokenizer.json, tokenizer_config.json, chat_template.jinja)', async () => {
  const dir = modelDirWith('qwen3.5', ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']);
  const vec = readFixtureJson<{ cases: { source: string; text: string; ids: number[] }[] }>('qwen3.5/tokenizer-vectors.json').cases;
  for (const name of ['added_tokens', 'devanagari']) {
    const v = vec.find((c) => c.source === name)!;
    assert.equal((await capture(() => tokenize(['--model', dir, '--text', v.text]))).out, JSON.stringify({ ids: v.ids }) + '\n', name);
  }
  const golden = readFixtureJson<{ cases: { name: string; messages: unknown; tools: unknown; expected: string }[] }>('qwen3.5/golden-renders-jinja2.json');
  const d = tempDir('cli35');
  const write = (name: string, v: unknown) => {
    const f = path.join(d, name);
    fs.writeFileSync(f, JSON.stringify(v));
    return f;
  };
  const tools = golden.cases.find((c) => c.name === 'tools_with_system_genprompt')!;
  const r = await capture(() => template(['--model', dir, '--messages', write('m.json', tools.messages), '--tools', write('t.json', tools.tools)]));
  assert.equal(r.out, tools.expected);
  assert.equal(r.err, '', 'the folder has a template: no fallback note');
  const off = golden.cases.find((c) => c.name === 'genprompt_enable_thinking_false')!;
  assert.equal((await capture(() => template(['--model', dir, '--messages', write('n.json', off.messages), '--no-thinking']))).out, off.expected);
  const on = golden.cases.find((c) => c.name === 'genprompt_enable_thinking_true')!;
  assert.equal((await capture(() => template(['--model', dir, '--messages', write('o.json', on.messages), '--thinking']))).out, on.expected);
  const calls = golden.cases.find((c) => c.name === 'two_consecutive_tool_results')!;
  assert.equal(
    (await capture(() => template(['--model', dir, '--messages', write('c.json', calls.messages), '--tools', write('ct.json', calls.tools), '--no-generation-prompt']))).out,
    calls.expected,
  );
});
