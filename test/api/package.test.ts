// The package entry point as a library user imports it (`import ... from 'qwen-ts'`, resolved
// through package.json's "exports"): load a model, chat with it, read its tokenizer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chatModelDir, fixtureDir } from '../helpers.js';

test("import from 'qwen-ts': a model's greedy chat answer is llama.cpp's greedy continuation", async () => {
  const q = await import('qwen-ts');
  const ref = JSON.parse(fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-realvocab'), 'reference.json'), 'utf8')).cases[0];
  const cm = q.openChatModel(chatModelDir(), 'tiny', { backend: q.createBackend('reference') });
  const it = q.chat(cm, { messages: [{ role: 'user', content: 'Hello, world! 你好，世界。 Tell me a joke about llamas 🦙.' }], temperature: 0, max_tokens: 16 });
  let text = '';
  for (let r = await it.next(); !r.done; r = await it.next()) if (r.value.kind === 'content') text += r.value.text;
  assert.equal(text, cm.tokenizer.decode(ref.greedy_generated_ids).trimEnd());
  assert.deepEqual(q.loadTokenizer(chatModelDir()).encode('<|im_start|>'), [151644]);
  assert.equal(typeof q.createServer, 'function');
  assert.equal(typeof q.pullModel, 'function');
  assert.throws(() => q.loadModel(path.join(chatModelDir(), 'nope')), q.QwenError);
});
