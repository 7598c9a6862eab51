// Images in chat prompts (src/vision/prompt.ts): the template's own rendering of image parts
// against jinja2's golden renders, and the pad expansion against the ids transformers' Qwen2.5-VL
// integration test expects (system + user + <|vision_start|> + <|image_pad|> x n).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ChatModel, prepareChat } from '../../src/chat/engine.js';
import { QwenError } from '../../src/errors.js';
import { CHATML_TEMPLATE } from '../../src/tokenizer/chat_template.js';
import { countImageParts, expandImagePads, renderWithImages } from '../../src/vision/prompt.js';
import type { ImageEmbedding } from '../../src/vision/types.js';
import { FIX, fixtureTokenizer, readFixtureJson } from '../tokenizer/helpers.js';

const VL = fs.readFileSync(path.join(FIX, 'chat-templates/qwen2-vl-and-qwen2.5-vl-instruct.jinja'), 'utf8');
const Q35 = fs.readFileSync(path.join(FIX, 'qwen3.5/chat_template.jinja'), 'utf8');
type Case = { name: string; messages: Record<string, unknown>[]; add_generation_prompt: boolean; kwargs: Record<string, unknown>; expected: string };
const golden = readFixtureJson<{ cases: Case[] }>('chat-template-tests/golden-renders-vl-jinja2.json').cases;

const img = (nx: number, ny: number, hash = 'h'): ImageEmbedding => ({ rows: new Float32Array(nx * ny * 2), nx, ny, dim: 2, hash });

test('image parts render as jinja2 renders the Qwen2-VL / Qwen2.5-VL template', () => {
  for (const c of golden.filter((c) => c.name.includes('image'))) {
    const out = renderWithImages(VL, { messages: c.messages, addGenerationPrompt: c.add_generation_prompt, extra: c.kwargs });
    assert.equal(out, c.expected, c.name);
  }
});

test('each <|image_pad|> expands to nx * ny pads: the ids transformers expects for Qwen2.5-VL', () => {
  const tok = fixtureTokenizer('qwen2.5');
  const c = golden.find((c) => c.name === 'image_then_text')!;
  const text = renderWithImages(VL, { messages: c.messages, addGenerationPrompt: true });
  const { ids, images } = expandImagePads(tok, tok.encode(text), [img(3, 2)]);
  // expected_input_ids of transformers' Qwen2_5_VLIntegrationTest, up to the first pad
  const head = [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 151652, 151655];
  assert.deepEqual(ids.slice(0, head.length), head);
  assert.deepEqual(ids.slice(14, 22), [151652, ...Array(6).fill(151655), 151653]);
  assert.equal(images.length, 1);
  assert.equal(images[0]!.start, 15);
  assert.equal(ids.length, tok.encode(text).length + 5);
});

test('two images: each its own run of pads, in prompt order', () => {
  const tok = fixtureTokenizer('qwen2.5');
  const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'and' }, { type: 'image' }] }];
  assert.equal(countImageParts(messages), 2);
  const text = renderWithImages(VL, { messages, addGenerationPrompt: true });
  const a = img(2, 2, 'a'),
    b = img(1, 3, 'b');
  const { ids, images } = expandImagePads(tok, tok.encode(text), [a, b]);
  assert.equal(images[0]!.image, a);
  assert.equal(images[1]!.image, b);
  const pad = tok.tokenToId('<|image_pad|>')!;
  for (const p of images) for (let k = 0; k < p.image.nx * p.image.ny; k++) assert.equal(ids[p.start + k], pad);
  assert.notEqual(ids[images[0]!.start + 4], pad); // <|vision_end|> after a's 4 rows
  assert.equal(ids[images[1]!.start - 1], tok.tokenToId('<|vision_start|>'));
});

test('a template that does not read parts (plain ChatML) gets the marker in the text', () => {
  const messages = [{ role: 'user', content: [{ type: 'text', text: 'look: ' }, { type: 'image' }, { type: 'text', text: ' ok?' }] }];
  const out = renderWithImages(CHATML_TEMPLATE, { messages, addGenerationPrompt: true });
  assert.equal(out, '<|im_start|>user\nlook: <|vision_start|><|image_pad|><|vision_end|> ok?<|im_end|>\n<|im_start|>assistant\n');
});

test("Qwen3.5's template places images itself and refuses one in a system message", () => {
  const user = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is it?' }] }];
  const out = renderWithImages(Q35, { messages: user, addGenerationPrompt: true, enableThinking: false });
  assert.match(out, /<\|im_start\|>user\n<\|vision_start\|><\|image_pad\|><\|vision_end\|>What is it\?<\|im_end\|>/);
  const sys = [{ role: 'system', content: [{ type: 'image' }] }, ...user];
  assert.throws(() => renderWithImages(Q35, { messages: sys, addGenerationPrompt: true }), /System message cannot contain images/);
});

test('pads written in the message text, or a count that does not match, are refused', () => {
  const tok = fixtureTokenizer('qwen2.5');
  const messages = [{ role: 'user', content: [{ type: 'text', text: 'sneaky <|image_pad|>' }, { type: 'image' }] }];
  assert.throws(
    () => renderWithImages(CHATML_TEMPLATE, { messages, addGenerationPrompt: true }),
    (e: Error) => e instanceof QwenError && /2 <\|image_pad\|> markers for 1 image/.test(e.message),
  );
  const ids = tok.encode('<|vision_start|><|image_pad|><|vision_end|>');
  assert.throws(() => expandImagePads(tok, ids, []), /1 <\|image_pad\|> tokens for 0 images/);
  assert.throws(() => expandImagePads(tok, ids, [img(1, 1), img(1, 1)]), /1 <\|image_pad\|> tokens for 2 images/);
});

test('prepareChat: image parts and encoded images must agree in number; template_kwargs reserved with images as without', () => {
  const tok = fixtureTokenizer('qwen2.5');
  const cm = { tokenizer: tok } as unknown as ChatModel;
  const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is it?' }] }];
  assert.throws(
    () => prepareChat(cm, { messages }),
    (e: Error) => e instanceof QwenError && /1 image part but 0 images were encoded/.test(e.message),
  );
  assert.throws(() => prepareChat(cm, { messages }, [img(1, 1), img(1, 1)]), /1 image part but 2 images were encoded/);
  const ok = prepareChat(cm, { messages }, [img(3, 2)]);
  const pad = tok.tokenToId('<|image_pad|>');
  assert.equal(ok.ids.filter((id) => id === pad).length, 6);
  assert.equal(ok.images?.length, 1);
  const reserved = /may not set 'enable_thinking'.*use the enable_thinking option/;
  assert.throws(() => prepareChat(cm, { messages: [{ role: 'user', content: 'hi' }], template_kwargs: { enable_thinking: true } }), reserved);
  assert.throws(() => prepareChat(cm, { messages, template_kwargs: { enable_thinking: true } }, [img(3, 2)]), reserved);
});
