// Image decoding against llama.cpp's stb_image (test/fixtures/vision/images/decode, see its
// PROVENANCE.md): PNG of every colour type and bit depth must give stb_image's bytes exactly;
// JPEG too (jpeg.ts follows stb_image's arithmetic).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { decodeImage, ImageError, probeImage } from '../../src/vision/image/decode.js';
import { decodeExpected, readDecodeFixture, readVisionImage, referencePixels, sha256 } from './fixtures.js';

const expected = decodeExpected();
const read = readDecodeFixture;
const sha = sha256;

const pngs = Object.keys(expected.decode).filter((n) => n.endsWith('.png'));
const jpegs = Object.keys(expected.decode).filter((n) => n.endsWith('.jpg'));

test('fixtures cover PNG colour types 0/2/3/4/6, depths 1/2/4/8/16, Adam7, and JPEG baseline / progressive / restarts / subsamplings / CMYK / RGB', () => {
  assert.ok(pngs.length >= 15, `${pngs.length} PNG fixtures`);
  assert.ok(jpegs.length >= 15, `${jpegs.length} JPEG fixtures`);
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

// JPEG: jpeg.ts follows stb_image's integer IDCT, chroma upsampling and YCbCr conversion, so
// the bytes must match too; the difference is reported before the exact check to show how far off a failure is.
for (const name of jpegs) {
  test(`JPEG ${name}: the bytes stb_image gives`, (t) => {
    const e = expected.decode[name]!;
    const img = decodeImage(read(name), name);
    assert.equal(img.width, e.width);
    assert.equal(img.height, e.height);
    const ref = zlib.gunzipSync(Buffer.from(e.rgb_gz_base64!, 'base64'));
    assert.equal(sha(ref), e.sha256);
    assert.equal(img.data.length, ref.length);
    let max = 0;
    let differ = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(img.data[i]! - ref[i]!);
      if (d) differ++;
      if (d > max) max = d;
    }
    t.diagnostic(`${name}: max |ours - stb_image| = ${max}, ${differ} of ${ref.length} bytes differ`);
    assert.equal(sha(img.data), e.sha256);
  });
}

test('probeImage reads format and size from the header of every fixture it can decode', () => {
  for (const [name, e] of Object.entries(expected.decode)) {
    if (name.endsWith('.webp') && e.lossless === undefined) {
      assert.throws(
        () => probeImage(read(name), name),
        (err: Error) => err instanceof ImageError && /animated WebP is not supported/.test(err.message),
      );
      continue;
    }
    const info = probeImage(read(name), name);
    const format = name.endsWith('.png') ? 'png' : name.endsWith('.jpg') ? 'jpeg' : name.endsWith('.gif') ? 'gif' : name.endsWith('.bmp') ? 'bmp' : 'webp';
    assert.deepEqual(info, { format, width: e.width, height: e.height }, name);
  }
});

// GIF: the first frame, as stb_image composes it (interlacing, transparency, a frame smaller than the screen)
const gifs = Object.keys(expected.decode).filter((n) => n.endsWith('.gif'));
for (const name of gifs) {
  test(`GIF ${name}: the bytes stb_image gives`, () => {
    const e = expected.decode[name]!;
    const img = decodeImage(read(name), name);
    assert.deepEqual([img.width, img.height], [e.width, e.height]);
    assert.equal(sha(img.data), e.sha256);
  });
}

test('GIF fixtures cover interlacing, transparency, animation and a background colour', () => {
  assert.ok(gifs.length >= 5);
  assert.notEqual(expected.decode['frame-on-background.gif']!.sha256, expected.decode['pattern.gif']!.sha256);
  assert.notEqual(expected.decode['transparent.gif']!.sha256, expected.decode['pattern.gif']!.sha256);
});

// BMP: palettes of 1/4/8 bits, 16-bit 565 bit fields, 24-bit both ways up, 32-bit in a 124-byte header
const bmps = Object.keys(expected.decode).filter((n) => n.endsWith('.bmp'));
for (const name of bmps) {
  test(`BMP ${name}: the bytes stb_image gives`, () => {
    const e = expected.decode[name]!;
    const img = decodeImage(read(name), name);
    assert.deepEqual([img.width, img.height], [e.width, e.height]);
    assert.equal(sha(img.data), e.sha256);
  });
}

// WebP: llama.cpp reads none, so libwebp's own decoder (dwebp) is the reference for lossless files
const webps = Object.keys(expected.decode).filter((n) => n.endsWith('.webp'));
for (const name of webps.filter((n) => expected.decode[n]!.lossless)) {
  test(`WebP ${name}: the pixels libwebp decodes`, () => {
    const e = expected.decode[name]!;
    const img = decodeImage(read(name), name);
    assert.deepEqual([img.width, img.height], [e.width, e.height]);
    assert.equal(sha(img.data), e.sha256);
  });
}

test('lossless WebP of a PNG gives the PNG pixels', () => {
  assert.deepEqual(decodeImage(read('rgb8-lossless.webp')).data, decodeImage(read('rgb8.png')).data);
  assert.ok(webps.filter((n) => expected.decode[n]!.lossless).length >= 10);
});

// lossy WebP: decodeImageAsync (test/vision/image_webp_lossy.test.ts); the sync path says so
test('lossy WebP (sync) and animated WebP are refused by name, with the file name', () => {
  for (const [name, pattern] of [
    ['rgb8-lossy.webp', /lossy WebP is decoded by decodeImageAsync/],
    ['rgba8-lossy-alpha.webp', /lossy WebP is decoded by decodeImageAsync/],
    ['animated.webp', /animated WebP is not supported/],
  ] as const) {
    assert.throws(
      () => decodeImage(read(name), name),
      (e: Error) => e instanceof ImageError && pattern.test(e.message) && e.message.startsWith(name),
    );
  }
});

// The vision fixtures' own images (test/fixtures/vision/images, V0's PROVENANCE.md): what the
// oracle runs were fed. PNG = make_png.py's pattern; JPEG = its stb_image decode; lossless WebP = the PNG.
test('the oracle images decode to what llama.cpp saw', () => {
  const file = readVisionImage;
  for (const [w, h] of [
    [56, 84],
    [168, 140],
    [160, 96],
    [130, 60],
  ] as const) {
    const img = decodeImage(file(`img-${w}x${h}.png`));
    assert.deepEqual([img.width, img.height], [w, h]);
    // make_png.py: R = round(255 x / (W - 1)), G = round(255 y / (H - 1)), B = checkerboard ^ ((x y) & 31)
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        const b = ((Math.floor(x / 8) + Math.floor(y / 8)) % 2 ? 224 : 32) ^ ((x * y) & 31);
        assert.deepEqual([...img.data.subarray(o, o + 3)], [Math.round((255 * x) / (w - 1)), Math.round((255 * y) / (h - 1)), b], `img-${w}x${h}.png (${x}, ${y})`);
      }
    }
  }
  for (const s of ['168x140', '160x96']) {
    assert.equal(sha(decodeImage(file(`img-${s}.jpg`)).data), sha(referencePixels(`img-${s}.jpg`)), `img-${s}.jpg`);
    assert.deepEqual(decodeImage(file(`img-${s}.webp`)).data, decodeImage(file(`img-${s}.png`)).data, `img-${s}.webp`);
  }
  assert.throws(() => decodeImage(file('img-160x96-lossy.webp'), 'img-160x96-lossy.webp'), /lossy WebP/);
});
