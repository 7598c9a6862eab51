// Image decoding against llama.cpp's stb_image (test/fixtures/vision/images/decode, see its
// PROVENANCE.md): PNG of every colour type and bit depth must give stb_image's bytes exactly;
// JPEG comes from another decoder (jpeg-js), so its difference to stb_image is measured and bounded.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { decodeImage, ImageError, probeImage } from '../../src/vision/image/decode.js';
import { FIXTURES } from '../helpers.js';

const DIR = path.join(FIXTURES, 'vision', 'images', 'decode');
interface Expected {
  decode: Record<string, { width: number; height: number; sha256?: string; rgb_gz_base64?: string }>;
}
const expected: Expected = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8'));
const read = (name: string) => new Uint8Array(fs.readFileSync(path.join(DIR, name)));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const pngs = Object.keys(expected.decode).filter((n) => n.endsWith('.png'));
const jpegs = Object.keys(expected.decode).filter((n) => n.endsWith('.jpg'));

test('fixtures cover PNG colour types 0/2/3/4/6, depths 1/2/4/8/16, Adam7, and JPEG baseline / progressive / grey', () => {
  assert.ok(pngs.length >= 15, `${pngs.length} PNG fixtures`);
  assert.ok(jpegs.length >= 5, `${jpegs.length} JPEG fixtures`);
});

for (const name of pngs) {
  test(`PNG ${name}: the bytes stb_image gives`, () => {
    const e = expected.decode[name]!;
    const img = decodeImage(read(name), name);
    assert.equal(img.width, e.width);
    assert.equal(img.height, e.height);
    assert.equal(img.data.length, e.width * e.height * 3);
    assert.equal(sha(img.data), e.sha256);
  });
}

// jpeg-js vs stb_image: both use integer IDCTs, but stb_image upsamples chroma with a triangle
// filter ("fancy" upsampling) and jpeg-js by repeating samples, so 4:2:0 / 4:2:2 images differ at
// colour edges; 4:4:4 and grey differ only by IDCT / colour conversion rounding.
const JPEG_BOUNDS: Record<string, { max: number; mean: number }> = {
  'photo-444.jpg': { max: 3, mean: 0.6 },
  'photo-grey.jpg': { max: 1, mean: 0.1 },
  'photo-420.jpg': { max: 47, mean: 2.2 },
  'photo-422-progressive.jpg': { max: 43, mean: 1.8 },
  'pattern-420.jpg': { max: 75, mean: 8.8 },
};

for (const name of jpegs) {
  test(`JPEG ${name}: close to stb_image's pixels`, (t) => {
    const e = expected.decode[name]!;
    const img = decodeImage(read(name), name);
    assert.equal(img.width, e.width);
    assert.equal(img.height, e.height);
    const ref = zlib.gunzipSync(Buffer.from(e.rgb_gz_base64!, 'base64'));
    assert.equal(sha(ref), e.sha256);
    assert.equal(img.data.length, ref.length);
    let max = 0;
    let sum = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(img.data[i]! - ref[i]!);
      sum += d;
      if (d > max) max = d;
    }
    const mean = sum / ref.length;
    t.diagnostic(`${name}: max |jpeg-js - stb_image| = ${max}, mean ${mean.toFixed(3)}`);
    const bound = JPEG_BOUNDS[name] ?? { max: 60, mean: 4 };
    assert.ok(max <= bound.max, `max difference ${max} > ${bound.max}`);
    assert.ok(mean <= bound.mean, `mean difference ${mean} > ${bound.mean}`);
  });
}

test('probeImage reads format and size from the header of every fixture', () => {
  for (const [name, e] of Object.entries(expected.decode)) {
    const info = probeImage(read(name), name);
    const format = name.endsWith('.png') ? 'png' : name.endsWith('.jpg') ? 'jpeg' : 'webp';
    assert.deepEqual(info, { format, width: e.width, height: e.height }, name);
  }
});

test('WebP (lossless and lossy) is refused by name, with its size', () => {
  for (const name of ['rgb8-lossless.webp', 'rgb8-lossy.webp']) {
    assert.throws(
      () => decodeImage(read(name), name),
      (e: Error) => e instanceof ImageError && /WebP/.test(e.message) && /37x29/.test(e.message) && e.message.includes(name),
    );
  }
});
