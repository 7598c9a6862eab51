// Images end to end on the real tiny vision models (test/fixtures/vision: LM + mmproj GGUF pairs) with
// the official openai client against `serve`'s engine thread, and the `run` command: an image in a
// chat message gives llama.cpp's greedy tokens (mtmd_oracle, same prompt: the fixtures' ChatML
// template with the image first, as libmtmd's marker), and its first log-probability, streamed and
// not, PNG as a data URL and JPEG from a local URL; the prefix cache reuses the blocks of the same
// image (with the same answer) and not those of another image of the same size; /health answers
// while images are encoded; `run --image` and `/image` answer as llama.cpp does.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import OpenAI from 'openai';
import { openChatModelThreaded, type ChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { listen, ROOT } from '../helpers.js';
import { loadOracle, visionGguf, visionImage, type VisionOracle, type VisionPreset } from './fixtures.js';
import { png } from './vl_double.js';

const CASES: { preset: VisionPreset; image: string; file: string }[] = [
  { preset: 'tiny-qwen25vl', image: '168x140', file: 'img-168x140.png' },
  { preset: 'tiny-qwen35vl', image: '160x96', file: 'img-160x96.png' },
];
const PROMPT = 'Describe this image.';

const closers: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function serve(preset: VisionPreset): Promise<{ client: OpenAI; url: string; cm: ChatModel }> {
  const g = visionGguf(preset, 'f32');
  const cm = await openChatModelThreaded(g.model, 'vl', { mmproj: g.mmproj, threads: '1', onNote: () => {} });
  closers.push(() => cm.close?.());
  const server = createServer(cm, { accessLog: false });
  closers.push(() => void (server.closeAllConnections(), server.close()));
  const url = await listen(server);
  return { client: new OpenAI({ apiKey: 'x', baseURL: `${url}/v1`, maxRetries: 0, timeout: 60_000 }), url, cm };
}

const dataUrl = (file: string) => `data:image/${file.endsWith('.jpg') ? 'jpeg' : 'png'};base64,${fs.readFileSync(visionImage(file)).toString('base64')}`;
const ask = (url: string): OpenAI.Chat.ChatCompletionMessageParam[] => [
  {
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url } },
      { type: 'text', text: PROMPT },
    ],
  },
];

/** log_softmax(logits)[id] in float64 */
function logprob(logits: readonly number[], id: number): number {
  const m = Math.max(...logits);
  return logits[id]! - m - Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0));
}

/** The oracle's greedy tokens as bytes, as the API reports each token's bytes. */
const oracleBytes = (cm: ChatModel, o: VisionOracle) => o.greedy.tokens.map((t) => Array.from(cm.tokenizer.tokenBytes(t)));

for (const c of CASES) {
  test(`${c.preset}: an image as a data URL, streamed and not; the prefix cache reuses its blocks with the same answer, and keeps another image apart`, async () => {
    const o = loadOracle(c.preset, 'f32', c.image);
    const { client, cm } = await serve(c.preset);
    const n = o.greedy.tokens.length;
    const r = await client.chat.completions.create({ model: 'vl', messages: ask(dataUrl(c.file)), temperature: 0, max_tokens: n, logprobs: true });
    const lps = r.choices[0]!.logprobs!.content!;
    assert.equal(r.usage!.prompt_tokens_details!.cached_tokens, 0);
    if (c.preset === 'tiny-qwen25vl') {
      // the fixture's ChatML template renders llama.cpp's prompt exactly (Qwen3.5's adds <think>: no oracle for that)
      assert.equal(r.usage!.prompt_tokens, o.prompt_tokens.length); // the image's nx * ny rows, as libmtmd's chunk
      assert.deepEqual(
        lps.map((l) => l.bytes),
        oracleBytes(cm, o),
      );
      // the first token's log-probability against llama.cpp's logits after the prompt (F32: ~2e-3 relative on logits)
      const ref = logprob(o.logits[o.prompt_tokens.length - 1]!, o.greedy.tokens[0]!);
      assert.ok(Math.abs(lps[0]!.logprob - ref) < 1e-2, `logprob ${lps[0]!.logprob} vs llama.cpp ${ref}`);
    } else assert.equal(r.usage!.prompt_tokens, o.prompt_tokens.length + 2); // + '<think>' '\n'

    // the same image again, streamed: every whole block of the prompt short of its last token comes
    // from the cache (past the image; Qwen3.5: its recurrent state from the checkpoint there), same answer
    const s = await client.chat.completions.create({
      model: 'vl',
      messages: ask(dataUrl(c.file)),
      temperature: 0,
      max_tokens: n,
      logprobs: true,
      stream: true,
      stream_options: { include_usage: true },
    });
    const streamed: { bytes: number[]; logprob: number }[] = [];
    let cached = -1;
    for await (const ch of s) {
      for (const l of ch.choices[0]?.logprobs?.content ?? []) streamed.push({ bytes: l.bytes!, logprob: l.logprob });
      if (ch.usage) cached = ch.usage.prompt_tokens_details!.cached_tokens!;
    }
    assert.equal(cached, Math.floor((r.usage!.prompt_tokens - 1) / 16) * 16);
    assert.ok(cached > o.image.start + o.image.n_tokens);
    assert.deepEqual(
      streamed.map((l) => l.bytes),
      lps.map((l) => l.bytes),
    );
    streamed.forEach((l, i) => assert.ok(Math.abs(l.logprob - lps[i]!.logprob) < 1e-3, `token ${i}: ${l.logprob} vs ${lps[i]!.logprob}`));

    // another image of the same size (so the same pads): its blocks are not the first image's
    const other = png(o.image.width, o.image.height, 9);
    const r3 = await client.chat.completions.create({ model: 'vl', messages: ask(`data:image/png;base64,${other.toString('base64')}`), temperature: 0, max_tokens: n });
    assert.equal(r3.usage!.prompt_tokens, r.usage!.prompt_tokens);
    assert.equal(r3.usage!.prompt_tokens_details!.cached_tokens, 0); // the image starts in the first block
  });
}

test("tiny-qwen25vl: a JPEG from a URL gives llama.cpp's tokens for that JPEG; /health answers while images are encoded", async () => {
  const o = loadOracle('tiny-qwen25vl', 'f32', '168x140-jpg');
  const files = http.createServer((req, res) => {
    if (req.url === '/img.jpg') return void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(fs.readFileSync(visionImage('img-168x140.jpg')));
    res.writeHead(404).end();
  });
  closers.push(() => void (files.closeAllConnections(), files.close()));
  const at = await listen(files);
  const { client, cm, url } = await serve('tiny-qwen25vl');
  const r = await client.chat.completions.create({ model: 'vl', messages: ask(`${at}/img.jpg`), temperature: 0, max_tokens: o.greedy.tokens.length, logprobs: true });
  assert.deepEqual(
    r.choices[0]!.logprobs!.content!.map((l) => l.bytes),
    oracleBytes(cm, o),
  );
  // four larger images (448 x 448: 256 merged tokens each) encoded one after another on the engine thread
  const big = `data:image/png;base64,${png(448, 448, 77).toString('base64')}`;
  const t0 = Date.now();
  const many = Promise.all(Array.from({ length: 4 }, () => client.chat.completions.create({ model: 'vl', messages: ask(big), temperature: 0, max_tokens: 1 })));
  let worst = 0,
    done = false;
  void many.finally(() => (done = true));
  while (!done) {
    const t = Date.now();
    assert.equal((await fetch(`${url}/health`)).status, 200);
    worst = Math.max(worst, Date.now() - t);
    await new Promise((r) => setTimeout(r, 25));
  }
  for (const x of await many) assert.ok(x.usage!.prompt_tokens > 256);
  assert.ok(worst < 2500, `/health took ${worst} ms while images were encoded (${Date.now() - t0} ms in all)`);
});

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

test('run --image and /image answer as llama.cpp does; a text model or a missing file is a one-line error', () => {
  const o = loadOracle('tiny-qwen25vl', 'f32', '168x140');
  const g = visionGguf('tiny-qwen25vl', 'f32');
  const img = visionImage('img-168x140.png');
  const args = ['run', g.model, '--mmproj', g.mmproj, '--temperature', '0', '--max-tokens', String(o.greedy.tokens.length), '--threads', '1'];
  const one = spawnSync(process.execPath, [CLI, ...args, '--image', img, '--json', PROMPT], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(one.status, 0, one.stderr);
  const content = JSON.parse(one.stdout).content as string;
  assert.equal(content, loadTokenizer(g.model).decode(o.greedy.tokens)); // the tokens llama.cpp chose
  const inter = spawnSync(process.execPath, [CLI, ...args], { input: `/image ${img}\n${PROMPT}\n/bye\n`, encoding: 'utf8', timeout: 60_000 });
  assert.equal(inter.status, 0, inter.stderr);
  assert.match(inter.stdout, /Image .* attached to your next message \(30 tokens\)/);
  assert.ok(inter.stdout.includes(content), `interactive answer: ${inter.stdout}`);

  const missing = spawnSync(process.execPath, [CLI, ...args, '--image', '/nonexistent.png', PROMPT], { encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /--image \/nonexistent\.png: no such file/);
  const text2 = spawnSync(process.execPath, [CLI, 'run', g.model, '--no-mmproj', '--image', img, PROMPT], { encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(text2.status, 0);
  assert.match(text2.stderr, /has no vision tower/);
});
