// `qwen-ts run` as a user drives it: a one-shot answer, --json, and the interactive chat with
// its commands; Ctrl-C (SIGINT) stops an answer, not the program.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { chatModelDir, fixtureDir, ROOT } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const TINY = fixtureDir('models/qwen2-tiny-tied');

test('one-shot: the answer streams to stdout; --json gives the message; same seed, same answer', () => {
  const a = spawnSync(process.execPath, [CLI, 'run', TINY, 'Hello', '--max-tokens', '8', '--seed', '3'], { encoding: 'utf8' });
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stderr, /no chat template; using plain ChatML/);
  const j = spawnSync(process.execPath, [CLI, 'run', TINY, 'Hello', '--max-tokens', '8', '--seed', '3', '--json'], { encoding: 'utf8' });
  const msg = JSON.parse(j.stdout);
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.usage.completion_tokens, 8);
  assert.equal(msg.finish_reason, 'length');
  assert.equal(a.stdout, msg.content.trimEnd() + '\n');
  const bad = spawnSync(process.execPath, [CLI, 'run', TINY, 'Hello', '--temperature', 'warm'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--temperature must be a number/);
});

test('interactive: commands work, Ctrl-C stops the answer and the chat goes on', async () => {
  const p = spawn(process.execPath, [CLI, 'run', chatModelDir(), '--max-tokens', '2000', '--temperature', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', () => {});
  const waitFor = async (re: RegExp, from = 0) => {
    for (let i = 0; i < 600 && !re.test(out.slice(from)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out.slice(from), re);
  };
  await waitFor(/Chatting with/);
  p.stdin.write('/think off\n');
  await waitFor(/Thinking off\./);
  p.stdin.write('/system Be brief.\n');
  await waitFor(/System message set\./);
  const mark = out.length;
  p.stdin.write('Tell me a long story\n');
  await new Promise((r) => setTimeout(r, 300)); // let the answer start streaming
  p.kill('SIGINT');
  await waitFor(/\[stopped\]/, mark);
  p.stdin.write('/clear\n');
  await waitFor(/Cleared the conversation\./, mark);
  p.stdin.write('/bye\n');
  const code = await new Promise((r) => p.on('close', r));
  assert.equal(code, 0, 'the program ended normally after Ctrl-C and /bye');
});

test('Qwen3.5 folder (hybrid model, official tokenizer and template), GGUF and Qwen3.5-MoE GGUF: one-shot answers, thinking on and off', () => {
  const dir = chatModelDir('qwen3.5');
  const gguf = path.join(fixtureDir('models/qwen35-tiny-realvocab'), 'model-f32.gguf');
  const moe = path.join(fixtureDir('models/qwen35moe-tiny-realvocab'), 'model-f32.gguf'); // Qwen3.5-MoE: routed + shared experts
  for (const model of [dir, gguf, moe]) {
    const on = spawnSync(process.execPath, [CLI, 'run', model, 'Hello', '--max-tokens', '6', '--seed', '1', '--json'], { encoding: 'utf8' });
    assert.equal(on.status, 0, on.stderr);
    const m = JSON.parse(on.stdout);
    assert.equal(m.usage.completion_tokens, 6);
    assert.ok(m.reasoning_content.length > 0, `${model}: thinking on by default in run: the answer starts as reasoning`);
    const off = spawnSync(process.execPath, [CLI, 'run', model, 'Hello', '--max-tokens', '6', '--seed', '1', '--json', '--no-think'], { encoding: 'utf8' });
    assert.equal(off.status, 0, off.stderr);
    const mo = JSON.parse(off.stdout);
    assert.ok(!mo.reasoning_content, `${model}: --no-think: no reasoning`);
    assert.ok(mo.content.length > 0);
    assert.doesNotMatch(off.stderr, /no chat template/);
  }
});
