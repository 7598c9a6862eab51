// Bad image input: every failure is an ImageError whose message names the file and the problem;
// never another exception, a hang, or a huge allocation. Headers claiming huge sizes fail before
// any pixel buffer exists; truncated and corrupted files fail or (when only trailing chunks are
// lost) decode to the same pixels.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { zlibSync } from 'fflate';
import { decodeImage, ImageError, probeImage } from '../../src/vision/image/decode.js';
import { readDecodeFixture } from './fixtures.js';

const read = readDecodeFixture;

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, zlib.crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function png(w: number, h: number, depth: number, colour: number, raw: Uint8Array | null, extra: Uint8Array[] = []): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  ihdr.set([depth, colour, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...extra];
  if (raw) parts.push(chunk('IDAT', zlibSync(raw)));
  parts.push(chunk('IEND', new Uint8Array(0)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}

function rejects(bytes: Uint8Array, pattern: RegExp, name = 'x.img', opts?: { maxPixels?: number }): void {
  assert.throws(
    () => decodeImage(bytes, name, opts),
    (e: Error) => {
      assert.ok(e instanceof ImageError, `not an ImageError: ${e.stack}`);
      assert.match(e.message, pattern);
      assert.ok(e.message.startsWith(name), `message does not name the file: ${e.message}`);
      return true;
    },
  );
}

test('not an image: the error says what it looks like', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  rejects(new Uint8Array(0), /empty/);
  rejects(enc('GIF89a\x01\x00\x01\x00'), /GIF: file is truncated/);
  rejects(enc('GIF88a\x01\x00\x01\x00\x00\x00\x00'), /starts like a GIF but its version is '88a'/);
  rejects(enc('BM6\x00\x00\x00\x00\x00'), /looks like a BMP/);
  rejects(enc('<!DOCTYPE html><html><body>404</body></html>'), /HTML/);
  rejects(enc('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'), /SVG/);
  rejects(enc('{"error": "not found"}'), /JSON/);
  rejects(enc('%PDF-1.7\n'), /PDF/);
  rejects(enc('data:image/png;base64,iVBORw0KGgo='), /data: URL/);
  rejects(enc('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC'), /base64/);
  rejects(new Uint8Array([0, 0, 0, 0x1c, 0x66, 0x74, 0x79, 0x70, 0x61, 0x76, 0x69, 0x66, 0, 0, 0, 0]), /AVIF/);
  rejects(new Uint8Array([0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70, 0x68, 0x65, 0x69, 0x63, 0, 0, 0, 0]), /HEIC/);
  rejects(new Uint8Array([0x89, 0x50, 0x4e]), /starts like a PNG/);
  rejects(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), /first bytes 01 02 03/);
  assert.throws(
    () => probeImage(enc('GIF89a')),
    (e: Error) => e instanceof ImageError && /GIF/.test(e.message),
  );
});

test('huge headers fail fast, before allocation; maxPixels sets the limit', () => {
  const t0 = performance.now();
  const huge = png(50_000, 50_000, 8, 2, new Uint8Array(10));
  assert.deepEqual(probeImage(huge), { format: 'png', width: 50_000, height: 50_000 });
  rejects(huge, /50000x50000 .*2500 megapixels.*limit of 50 megapixels/);
  // JPEG frame header of 65535 x 65535
  const sof = [0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0xff, 0xff, 0xff, 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  rejects(new Uint8Array([...sof, 0xff, 0xd9]), /65535x65535/);
  assert.ok(performance.now() - t0 < 1000);
  // the limit is an option, checked on the header
  const small = read('rgb8.png');
  rejects(small, /37x29 .*limit of 0\.0 megapixels/, 'rgb8.png', { maxPixels: 1000 });
  assert.equal(decodeImage(small, 'rgb8.png', { maxPixels: 37 * 29 }).width, 37);
  // and a header that lies about its size beside short data is refused, not read out of bounds
  rejects(png(4000, 4000, 8, 2, new Uint8Array(100)), /truncated/);
});

test('zero-sized images are refused', () => {
  rejects(png(0, 10, 8, 2, new Uint8Array(0)), /0x10 is empty/);
  rejects(png(10, 0, 8, 2, new Uint8Array(0)), /10x0 is empty/);
  const sof0 = [0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 0, 0, 16, 1, 1, 0x11, 0, 0xff, 0xd9];
  rejects(new Uint8Array(sof0), /16x0 is empty/);
});

test('malformed PNG structure: each error names the problem', () => {
  const row = (f: number, n: number) => new Uint8Array([f, ...new Array(n).fill(7)]);
  rejects(png(2, 1, 8, 5, row(0, 6)), /colour type 5/);
  rejects(png(2, 1, 4, 2, row(0, 3)), /bit depth 4 .*colour type 2/);
  rejects(png(2, 1, 8, 2, row(9, 6)), /filter type 9/);
  rejects(png(2, 1, 8, 3, row(0, 2)), /without a PLTE/);
  rejects(png(2, 1, 8, 3, row(0, 2), [chunk('PLTE', new Uint8Array(6))]), /palette index 7 .*2-entry/);
  rejects(png(2, 1, 8, 2, row(0, 6), [chunk('ZZZZ', new Uint8Array(1))]), /unknown critical chunk 'ZZZZ'/);
  rejects(png(2, 1, 8, 2, null), /no image data/);
  rejects(png(2, 2, 8, 2, row(0, 6)), /truncated \(7 of 14 bytes\)/);
  // a valid one of the same kind decodes (so the checks above fail for the stated reason)
  assert.deepEqual(decodeImage(png(2, 1, 8, 2, row(0, 6))).data, new Uint8Array(6).fill(7));
});

test('any one damaged byte of a PNG before IEND is an error (critical chunks are CRC-checked)', () => {
  const src = read('rgb8.png');
  const iend = src.length - 12;
  for (let i = 0; i < iend; i++) {
    const b = src.slice();
    b[i] = b[i]! ^ 0x10;
    assert.throws(
      () => decodeImage(b, 'd.png'),
      (e: Error) => e instanceof ImageError && e.message.startsWith('d.png'),
      `byte ${i}`,
    );
  }
  rejects(
    png(2, 1, 8, 2, new Uint8Array(7)).map((v, i) => (i === 30 ? v ^ 1 : v)),
    /corrupt 'IHDR' chunk at byte 8 \(CRC mismatch\)/,
  );
});

test('a PNG cut anywhere: an ImageError, or the same pixels when only IEND is lost', () => {
  const full = read('rgb8-adam7.png');
  const good = decodeImage(full, 'a.png').data;
  let decoded = 0;
  for (let n = 0; n < full.length; n++) {
    try {
      const img = decodeImage(full.subarray(0, n), 'a.png');
      assert.deepEqual(img.data, good, `cut at ${n}`);
      decoded++;
    } catch (e) {
      assert.ok(e instanceof ImageError, `cut at ${n}: ${(e as Error).stack}`);
      assert.ok(e.message.startsWith('a.png'), e.message);
    }
  }
  assert.ok(decoded <= 12, `${decoded} cuts decoded`); // only cuts inside IEND (12 bytes)
});

test('a JPEG cut anywhere: an ImageError naming the file', () => {
  const full = read('photo-422-progressive.jpg');
  for (let n = 0; n < full.length - 1; n += 7) {
    assert.throws(
      () => decodeImage(full.subarray(0, n), 'p.jpg'),
      (e: Error) => e instanceof ImageError && e.message.startsWith('p.jpg'),
      `cut at ${n}`,
    );
  }
});

test('a lossless WebP cut anywhere: an ImageError naming the file', () => {
  const full = read('pattern-203x150-lossless.webp');
  for (let n = 0; n < full.length - 1; n += 5) {
    assert.throws(
      () => decodeImage(full.subarray(0, n), 'p.webp'),
      (e: Error) => e instanceof ImageError && e.message.startsWith('p.webp'),
      `cut at ${n}`,
    );
  }
});

test('a GIF cut anywhere before its first frame ends: an ImageError naming the file', () => {
  const full = read('pattern.gif');
  for (let n = 0; n < full.length - 2; n += 3) {
    assert.throws(
      () => decodeImage(full.subarray(0, n), 'c.gif'),
      (e: Error) => e instanceof ImageError && e.message.startsWith('c.gif'),
      `cut at ${n}`,
    );
  }
  // and the size limit holds for GIF too
  const big = read('pattern.gif').slice();
  big.set([0xff, 0xff, 0xff, 0xff], 6);
  rejects(big, /65535x65535/, 'big.gif');
});

test('BMP: truncated pixel data, RLE and a bad palette index are refused by name', () => {
  const full = read('rgb24.bmp');
  rejects(full.subarray(0, full.length - 40), /truncated \(pixel data\)/, 't.bmp');
  const rle = read('palette8.bmp').slice();
  rle[30] = 1;
  rejects(rle, /RLE-compressed BMP/, 'r.bmp');
  // 2x1, 8 bits a pixel, a 2-entry palette, pixels 1 and 5
  const bmp = new Uint8Array(14 + 40 + 8 + 4);
  const v = new DataView(bmp.buffer);
  bmp.set([0x42, 0x4d]);
  v.setUint32(2, bmp.length, true);
  v.setUint32(10, 62, true);
  v.setUint32(14, 40, true);
  v.setInt32(18, 2, true);
  v.setInt32(22, 1, true);
  v.setUint16(26, 1, true);
  v.setUint16(28, 8, true);
  bmp.set([255, 0, 0, 0, 0, 255, 0, 0, 1, 5], 54);
  rejects(bmp, /palette index 5 is past the 2-entry palette/, 'p.bmp');
  bmp[63] = 0;
  assert.deepEqual([...decodeImage(bmp).data], [0, 255, 0, 0, 0, 255]);
});

test('a VP8X header that understates a lossless image is caught before allocation', () => {
  const b = read('rgb8-lossless-vp8x.webp').slice();
  const at = b.indexOf(0x2f, 20); // VP8L signature: 14 bits width - 1, 14 bits height - 1 follow
  assert.equal(String.fromCharCode(...b.subarray(at - 8, at - 4)), 'VP8L');
  b[at + 1] = 0xff;
  b[at + 2] = 0xff;
  b[at + 3] = 0xff;
  b[at + 4] = (b[at + 4]! & 0xf0) | 0x0f;
  rejects(b, /16384x16384 .*over the limit/, 'big.webp');
});

test('corrupted bytes (fixed pseudo-random flips) give an ImageError or an image, never another exception', () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  for (const name of [
    'rgb8.png',
    'palette4.png',
    'rgba16-adam7.png',
    'photo-420.jpg',
    'photo-422-progressive.jpg',
    'photo-lossless-z9.webp',
    'palette2-lossless.webp',
    'pattern-interlaced.gif',
    'animated.gif',
  ]) {
    const src = read(name);
    for (let k = 0; k < 60; k++) {
      const b = src.slice();
      const flips = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < flips; i++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      try {
        const img = decodeImage(b, name);
        assert.equal(img.data.length, img.width * img.height * 3);
      } catch (e) {
        assert.ok(e instanceof ImageError, `${name} mutation ${k}: ${(e as Error).stack}`);
      }
    }
  }
});
