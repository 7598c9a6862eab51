// Lossy WebP (VP8, and VP8X + ALPH + VP8) through decodeImageAsync: the RGB must equal, byte for
// byte, what libwebp's dwebp writes (-ppm), for the fixtures of
// test/fixtures/vision/images/decode (PROVENANCE.md: cwebp -q 80, the simple loop filter, no
// filter, raw and filtered alpha, odd sizes) and for the vision oracle's img-160x96-lossy.webp.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeImage, decodeImageAsync, ImageError, probeImage } from '../../src/vision/image/decode.js';
import { ImageQueue } from '../../src/vision/jobs.js';
import type { ImageEmbedding, VisionEncoder } from '../../src/vision/types.js';
import { decodeExpected, readDecodeFixture, readVisionImage, referencePixels, sha256 } from './fixtures.js';

const expected = decodeExpected();
const read = readDecodeFixture;
const sha = sha256;
const lossy = Object.keys(expected.decode).filter((n) => n.endsWith('.webp') && expected.decode[n]!.lossless === false);

test('lossy WebP fixtures: plain VP8 and VP8X + ALPH, odd sizes, three loop filter settings', () => {
  assert.ok(lossy.length >= 7, `${lossy.length} lossy WebP fixtures`);
  assert.ok(lossy.some((n) => n.includes('alpha')));
});

for (const name of lossy) {
  test(`lossy WebP ${name}: the bytes dwebp gives`, async () => {
    const e = expected.decode[name]!;
    assert.deepEqual(probeImage(read(name), name), { format: 'webp', width: e.width, height: e.height });
    const img = await decodeImageAsync(read(name), name);
    assert.deepEqual([img.width, img.height], [e.width, e.height]);
    assert.equal(img.data.length, e.width * e.height * 3);
    assert.equal(sha(img.data), e.sha256);
  });
}

test("the vision oracle's img-160x96-lossy.webp decodes to its dwebp reference", async () => {
  const img = await decodeImageAsync(readVisionImage('img-160x96-lossy.webp'));
  assert.deepEqual([img.width, img.height], [160, 96]);
  assert.deepEqual(img.data, referencePixels('img-160x96-lossy.webp'));
});

test('decodeImageAsync gives decodeImage bytes for the other formats, and refuses what it refuses', async () => {
  for (const name of ['rgb8.png', 'photo-420.jpg', 'rgb8-lossless.webp', 'pattern.gif', 'rgb24.bmp']) {
    assert.deepEqual(await decodeImageAsync(read(name), name), decodeImage(read(name), name), name);
  }
  await assert.rejects(decodeImageAsync(read('animated.webp'), 'a.webp'), (e: Error) => e instanceof ImageError && /^a\.webp.*animated WebP is not supported/.test(e.message));
  await assert.rejects(decodeImageAsync(new TextEncoder().encode('<svg></svg>'), 'x.svg'), /x\.svg: not a PNG, JPEG, WebP, GIF or BMP image \(it is an SVG drawing/);
});

test('lossy WebP, sync: an ImageError that names the file and decodeImageAsync', () => {
  assert.throws(
    () => decodeImage(read('photo-lossy.webp'), 'p.webp'),
    (e: Error) => e instanceof ImageError && e.message.startsWith('p.webp') && /lossy WebP is decoded by decodeImageAsync/.test(e.message),
  );
});

test('lossy WebP over the pixel limit is refused on the header, before decoding', async () => {
  await assert.rejects(decodeImageAsync(read('photo-lossy.webp'), 'p.webp', { maxPixels: 99 * 67 - 1 }), (e: Error) => e instanceof ImageError && /^p\.webp.*over the limit/.test(e.message));
  assert.equal((await decodeImageAsync(read('photo-lossy.webp'), 'p.webp', { maxPixels: 99 * 67 })).width, 99);
});

/** `b` cut to `n` bytes with the RIFF and (first, VP8) chunk sizes saying so: libwebp runs out of data. */
function cut(b: Uint8Array, n: number): Uint8Array {
  const c = b.slice(0, n);
  const v = new DataView(c.buffer);
  v.setUint32(4, n - 8, true);
  v.setUint32(16, n - 20, true);
  return c;
}

test('truncated or corrupt lossy WebP: an ImageError naming the file, never a crash or a wrong image', async () => {
  const b = read('photo-lossy.webp');
  assert.equal(String.fromCharCode(...b.subarray(12, 16)), 'VP8 ');
  for (const n of [40, 100, 300, b.length - 100]) {
    await assert.rejects(decodeImageAsync(cut(b, n), 'cut.webp'), (e: Error) => e instanceof ImageError && /^cut\.webp.*libwebp could not decode/.test(e.message), `${n} bytes`);
  }
  // chunk sizes left as they were: refused on the container, before libwebp
  await assert.rejects(decodeImageAsync(b.subarray(0, 200), 'short.webp'), /short\.webp.*file is truncated/);
  // a frame whose size disagrees with the VP8X canvas
  const a = read('rgba8-lossy-alpha.webp').slice();
  a[24] = 40; // canvas width - 1: 36 -> 40
  await assert.rejects(decodeImageAsync(a, 'canvas.webp'), (e: Error) => e instanceof ImageError && /^canvas\.webp.*libwebp could not decode/.test(e.message));
});

test('concurrent lossy decodes each get their own pixels', async () => {
  const names = [...lossy, ...lossy];
  const imgs = await Promise.all(names.map((n) => decodeImageAsync(read(n), n)));
  imgs.forEach((img, i) => assert.equal(sha(img.data), expected.decode[names[i]!]!.sha256, names[i]));
});

test("the server's ImageQueue hands the tower libwebp's pixels of a lossy WebP", async () => {
  const seen: Uint8Array[] = [];
  const tower = {
    kind: 'qwen2_5_vl',
    encode(img: { data: Uint8Array }, hash: string) {
      seen.push(img.data);
      return { hash } as unknown as ImageEmbedding;
    },
  } as unknown as VisionEncoder;
  const q = new ImageQueue(tower);
  await q.encode(readVisionImage('img-160x96-lossy.webp'), 'h');
  assert.deepEqual(seen[0], referencePixels('img-160x96-lossy.webp'));
  await assert.rejects(q.encode(cut(read('photo-lossy.webp'), 300), 'h2'), ImageError);
  assert.equal(seen.length, 1);
});
