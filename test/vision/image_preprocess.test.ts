// Smart resize, bicubic resize + padding and normalisation against llama.cpp's own code
// (mtmd-image.cpp compiled into scripts/mtmd_image_dump.cpp) and, for the bicubic step alone,
// against Pillow's Image.resize(BICUBIC): both must agree to the byte / to the float32 bit.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import type { RgbImage } from '../../src/vision/types.js';
import { decodeImage, ImageError } from '../../src/vision/image/decode.js';
import { normalize, preprocess, resizeBicubic, resizePad, smartSize } from '../../src/vision/image/preprocess.js';
import { FIXTURES } from '../helpers.js';

const DIR = path.join(FIXTURES, 'vision', 'images', 'decode');
interface Expected {
  decode: Record<string, { width: number; height: number; sha256: string; rgb_gz_base64?: string }>;
  resize: { image: string; factor: number; minPixels: number; maxPixels: number; width: number; height: number; sha256: string; mean: number[]; std: number[]; f32_sha256: string }[];
  pillow: { source: string; cases: { width: number; height: number; sha256: string }[] };
  sizes: [number, number, number, number, number, number, number][];
}
const expected: Expected = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The image as llama.cpp decodes it: our PNG decoder is stb-exact; for JPEG, stb_image's bytes from the fixture. */
function stbImage(name: string): RgbImage {
  const e = expected.decode[name]!;
  if (e.rgb_gz_base64) return { width: e.width, height: e.height, data: new Uint8Array(zlib.gunzipSync(Buffer.from(e.rgb_gz_base64, 'base64'))) };
  const img = decodeImage(new Uint8Array(fs.readFileSync(path.join(DIR, name))), name);
  assert.equal(sha(img.data), e.sha256);
  return img;
}

test('smartSize: the target size llama.cpp computes, for every size and bound in the fixture', () => {
  assert.ok(expected.sizes.length >= 100);
  for (const [w, h, f, mn, mx, tw, th] of expected.sizes) {
    assert.deepEqual(smartSize(w, h, f, mn, mx), { width: tw, height: th }, `${w}x${h} factor ${f} [${mn}, ${mx}]`);
  }
  // VISION.md 4.3's example: 56x84 at factor 28 -> 6 tokens < 8 -> 84x112
  assert.deepEqual(smartSize(56, 84, 28, 8 * 784, 4096 * 784), { width: 84, height: 112 });
});

test('resizePad after smartSize: the padded bytes and float32 pixels mtmd makes', () => {
  for (const r of expected.resize) {
    const img = stbImage(r.image);
    const t = smartSize(img.width, img.height, r.factor, r.minPixels, r.maxPixels);
    assert.deepEqual(t, { width: r.width, height: r.height });
    const out = resizePad(img, t.width, t.height);
    assert.equal(sha(out.data), r.sha256, `${r.image} -> ${t.width}x${t.height}`);
    // mtmd's floats are interleaved RGB; ours planar [3, H, W]
    const px = normalize(out, r.mean, r.std);
    const n = px.width * px.height;
    const inter = new Float32Array(3 * n);
    for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) inter[i * 3 + c] = px.data[c * n + i]!;
    assert.equal(sha(new Uint8Array(inter.buffer)), r.f32_sha256, `${r.image} normalised`);
  }
});

test('resizeBicubic: Pillow BICUBIC bytes (up, down, one side, both, to 1x1)', () => {
  const src = stbImage(expected.pillow.source);
  for (const c of expected.pillow.cases) {
    const out = resizeBicubic(src, c.width, c.height);
    assert.equal(out.width, c.width);
    assert.equal(out.height, c.height);
    assert.equal(sha(out.data), c.sha256, `${src.width}x${src.height} -> ${c.width}x${c.height}`);
  }
});

test('preprocess = smartSize + resizePad + normalize; defaults are 8 and 4096 merged tokens', () => {
  const r = expected.resize[0]!;
  assert.equal(r.minPixels, 8 * r.factor * r.factor);
  assert.equal(r.maxPixels, 4096 * r.factor * r.factor);
  const img = stbImage(r.image);
  const px = preprocess(img, { patch: r.factor / 2, merge: 2, mean: r.mean, std: r.std });
  assert.equal(px.width, r.width);
  assert.equal(px.height, r.height);
  assert.equal(px.data.length, 3 * r.width * r.height);
  const again = normalize(resizePad(img, r.width, r.height), r.mean, r.std);
  assert.deepEqual(px.data, again.data);
  // explicit bounds win over the defaults
  const small = preprocess(img, { patch: 14, merge: 2, mean: r.mean, std: r.std, minPixels: 784, maxPixels: 784 });
  assert.deepEqual([small.width, small.height], [28, 28]);
  // an image already of the target size is not resampled: pixel (0, 0) of the red plane is (r / 255 - mean) / std
  const exact: RgbImage = { width: 56, height: 112, data: new Uint8Array(56 * 112 * 3).fill(255) };
  const p = preprocess(exact, { patch: 14, merge: 2, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  assert.deepEqual([p.width, p.height], [56, 112]);
  assert.equal(p.data[0], 1);
});

test('preprocess and smartSize refuse bad arguments with a clear error', () => {
  const img: RgbImage = { width: 4, height: 4, data: new Uint8Array(48) };
  assert.throws(() => smartSize(0, 10, 28, 10, 100), ImageError);
  assert.throws(() => smartSize(10, 10, 0, 10, 100), /factor/);
  assert.throws(() => smartSize(10, 10, 28, 100, 10), /pixel bounds/);
  assert.throws(() => preprocess({ width: 4, height: 4, data: new Uint8Array(10) }, { patch: 14, merge: 2, mean: [0, 0, 0], std: [1, 1, 1] }), /48/);
  assert.throws(() => preprocess(img, { patch: 14, merge: 2, mean: [0, 0, 0], std: [1, 0, 1] }), /std/);
  assert.throws(() => resizeBicubic(img, 0, 3), /empty/);
  // 1 x 40,000,000 pixels (header only: data is not read before the size check)
  const thin = { width: 1, height: 40_000_000, data: new Uint8Array(0) };
  assert.deepEqual(smartSize(1, 40_000_000, 28, 6272, 3211264), { width: 28, height: 11_333_588 }); // = llama.cpp's
  assert.throws(() => preprocess(thin, { patch: 14, merge: 2, mean: [0, 0, 0], std: [1, 1, 1] }), /1x40000000 .* 28x11333588, over 65536 a side/);
});
