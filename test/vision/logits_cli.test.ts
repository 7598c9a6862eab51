// `qwen-ts logits --image FILE` end to end against llama.cpp (mtmd_oracle, V0's fixtures): the image
// decoded, resized and encoded by our tower, its rows in place of the one <|image_pad|> of --tokens,
// the language model at M-RoPE positions. The tower loads three ways: the mmproj beside a GGUF
// model (found by itself), --mmproj, and an HF folder's own visual.* tensors. Then the errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { run } from '../../src/cli/logits.js';
import { QwenError } from '../../src/errors.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { IMAGE_PAD } from '../../src/vision/prompt.js';
import { capture, fixtureDir, relErr, ROOT } from '../helpers.js';
import { loadOracle, visionGguf, visionHfDir, visionImage, type VisionOracle, type VisionPreset } from './fixtures.js';

// Our tower differs from llama.cpp's by ~1e-4 relative (its fp16 GELU table and im2col, which we do
// not emulate: VISION.md "Verification", whose advice is ~2e-3 end to end); through the language
// model the worst text position measured 6.9e-4 (tiny-qwen25vl 56x84), 7.1e-4 (168x140, HF) and
// 9.3e-4 (tiny-qwen35vl 160x96). Swapping an image's h and w positions moves the logits after it by
// up to 9e-3 (qwen25vl) and 1e-2 (qwen35vl), so a wrong position still fails.
const TOL = 2e-3;

/** The oracle's prompt with its image rows as one <|image_pad|> id, as --tokens takes it. */
function tokensArg(o: VisionOracle, pad: number): string {
  const t = o.prompt_tokens,
    s = o.image.start;
  return [...t.slice(0, s), pad, ...t.slice(s + o.image.n_tokens)].join(',');
}

async function logits(...args: string[]): Promise<number[] | number[][]> {
  const { out } = await capture(() => run(args));
  return JSON.parse(out).logits;
}

const cases: { preset: VisionPreset; image: string; how: string; model: () => string[] }[] = [
  { preset: 'tiny-qwen25vl', image: '56x84', how: 'GGUF, mmproj found beside it', model: () => ['--model', visionGguf('tiny-qwen25vl', 'f32').model] },
  {
    preset: 'tiny-qwen35vl',
    image: '160x96',
    how: 'GGUF and --mmproj',
    model: () => {
      const g = visionGguf('tiny-qwen35vl', 'f32');
      return ['--model', g.model, '--mmproj', g.mmproj];
    },
  },
  { preset: 'tiny-qwen25vl', image: '168x140', how: 'HF folder with its visual.* tower', model: () => ['--model', visionHfDir('tiny-qwen25vl')] },
];

for (const c of cases) {
  test(`logits --image, ${c.preset} ${c.image} (${c.how}) --all: every text position = llama.cpp`, async () => {
    const o = loadOracle(c.preset, 'f32', c.image);
    const model = c.model();
    const pad = loadTokenizer(model[1]!).tokenToId(IMAGE_PAD)!;
    const rows = (await logits(...model, '--image', visionImage(o.image.file), '--tokens', tokensArg(o, pad), '--all')) as number[][];
    assert.equal(rows.length, o.prompt_tokens.length);
    let worst = 0;
    o.logits.forEach((ref, pos) => {
      if (!ref) return;
      const e = relErr(rows[pos]!, ref);
      worst = Math.max(worst, e);
      assert.ok(e < TOL, `position ${pos}: relative error ${e.toExponential(2)}`);
    });
    process.stdout.write(`# ${c.preset} ${c.image} (${c.how}): worst relative error ${worst.toExponential(2)}\n`);
  });
}

test('logits --image without --all: the last position', async () => {
  const o = loadOracle('tiny-qwen25vl', 'f32', '56x84');
  const model = visionGguf('tiny-qwen25vl', 'f32').model;
  const last = (await logits('--model', model, '--image', visionImage(o.image.file), '--tokens', tokensArg(o, 284), '--backend', 'reference')) as number[];
  assert.ok(relErr(last, o.logits.at(-1)!) < TOL);
});

test('logits --image: no pad, two pads, a text model, no tower, an mmproj of another model, a missing or non-image file are one-line errors', async () => {
  const g25 = visionGguf('tiny-qwen25vl', 'f32'),
    g35 = visionGguf('tiny-qwen35vl', 'f32');
  const img = visionImage('img-56x84.png');
  const fails = (re: RegExp, ...args: string[]) =>
    assert.rejects(
      capture(() => run(args)),
      (e: unknown) => e instanceof QwenError && re.test(e.message),
    );
  await fails(/--tokens holds no <\|image_pad\|> ids \(284\)/, '--model', g25.model, '--image', img, '--tokens', '273,117');
  await fails(/--tokens holds 2 <\|image_pad\|> ids/, '--model', g25.model, '--image', img, '--tokens', '273,284,10,284');
  const text = fixtureDir('models/qwen2-tiny-tied');
  await fails(/this qwen2 model is a text model .* takes no images/, '--model', text, '--image', img, '--tokens', '1,2');
  await fails(/--mmproj .*: this qwen2 model takes no images/, '--model', text, '--mmproj', g25.mmproj, '--image', img, '--tokens', '1,2');
  // the Qwen3.5 model unpacked alone into a temp folder: no mmproj beside it
  await fails(/no vision tower for this model; give its mmproj GGUF with --mmproj/, '--model', g35.model, '--image', img, '--tokens', '1,248056');
  await fails(/the vision tower makes rows of 128 .* hidden size is 64: this mmproj belongs to another model/, '--model', g25.model, '--mmproj', g35.mmproj, '--image', img, '--tokens', '273,284');
  await fails(/--mmproj is for --image/, '--model', g25.model, '--mmproj', g25.mmproj, '--tokens', '273,284');
  // an --image that is missing, or not an image
  await fails(/^--image \S*nope\.png: no such file$/, '--model', g25.model, '--image', path.join(path.dirname(img), 'nope.png'), '--tokens', '273,284');
  await fails(/^--image \S*README\.md: not a PNG, JPEG, WebP, GIF or BMP image/, '--model', g25.model, '--image', path.join(ROOT, 'README.md'), '--tokens', '273,284');
  // and as a user sees it: one line on stderr, exit 1
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'logits', '--model', g25.model, '--image', img, '--tokens', '273'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^qwen-ts logits: --tokens holds no <\|image_pad\|> ids/);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});
