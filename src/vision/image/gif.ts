// GIF to RGB: the first frame, as llama.cpp's stb_image 2.30 gives it with 3 channels requested
// (what the model sees of an animated GIF in llama.cpp). Pixels the frame does not cover, and
// transparent ones, stay black, except that when the logical screen's background index is
// above 0 uncovered pixels take that palette colour with red and blue swapped (stb_image copies
// its BGRA palette entry as is). A file that ends early is an error here; stb_image keeps the part it read.
import type { RgbImage } from '../types.js';
import { checkSize, ImageError, type ImageInfo, u16le } from './common.js';

export function gifHeader(b: Uint8Array, what: string): ImageInfo {
  if (b.length < 13) throw new ImageError(`${what}: file is truncated (${b.length} bytes)`);
  return { format: 'gif', width: u16le(b, 6), height: u16le(b, 8) };
}

export function decodeGif(b: Uint8Array, what: string, maxPixels: number): RgbImage {
  const { width: w, height: h } = gifHeader(b, what);
  checkSize(w, h, maxPixels, what);
  let pos = 10; // after the signature and the screen size (gifHeader)
  const u8 = () => {
    if (pos >= b.length) throw new ImageError(`${what}: file is truncated (at byte ${pos})`);
    return b[pos++]!;
  };
  const u16 = () => u8() | (u8() << 8);
  const skip = (n: number) => {
    if (pos + n > b.length) throw new ImageError(`${what}: file is truncated (at byte ${pos})`);
    pos += n;
  };
  const flags = u8();
  const bgindex = u8();
  u8(); // aspect ratio
  // palettes as stb_image keeps them: [B, G, R, A] per entry
  const readPalette = (n: number, transparent: number) => {
    const p = new Uint8Array(256 * 4);
    for (let i = 0; i < n; i++) {
      p[i * 4 + 2] = u8();
      p[i * 4 + 1] = u8();
      p[i * 4] = u8();
      p[i * 4 + 3] = i === transparent ? 0 : 255;
    }
    return p;
  };
  const pal = flags & 0x80 ? readPalette(2 << (flags & 7), -1) : new Uint8Array(256 * 4);
  const out = new Uint8Array(w * h * 4);
  const history = new Uint8Array(w * h);
  let eflags = 0;
  let transparent = -1;
  for (;;) {
    const tag = u8();
    if (tag === 0x21) {
      const ext = u8();
      if (ext === 0xf9) {
        const len = u8();
        if (len === 4) {
          eflags = u8();
          u16(); // delay
          if (transparent >= 0) pal[transparent * 4 + 3] = 255;
          if (eflags & 1) {
            transparent = u8();
            pal[transparent * 4 + 3] = 0;
          } else {
            skip(1);
            transparent = -1;
          }
        } else {
          skip(len);
          continue; // stb_image goes back to the tag loop without reading the sub-blocks
        }
      }
      for (let len = u8(); len !== 0; len = u8()) skip(len);
    } else if (tag === 0x2c) {
      const x = u16();
      const y = u16();
      const fw = u16();
      const fh = u16();
      if (x + fw > w || y + fh > h) throw new ImageError(`${what}: frame ${fw}x${fh} at (${x}, ${y}) is outside the ${w}x${h} image`);
      const lflags = u8();
      let table: Uint8Array;
      if (lflags & 0x80) table = readPalette(2 << (lflags & 7), eflags & 1 ? transparent : -1);
      else if (flags & 0x80) table = pal;
      else throw new ImageError(`${what}: no colour table`);
      raster(w, x, y, fw, fh, lflags & 0x40 ? 3 : 0, table);
      if (bgindex > 0) {
        pal[bgindex * 4 + 3] = 255;
        for (let i = 0; i < w * h; i++) if (!history[i]) out.set(pal.subarray(bgindex * 4, bgindex * 4 + 4), i * 4);
      }
      const rgb = new Uint8Array(w * h * 3);
      for (let i = 0; i < w * h; i++) (rgb[i * 3] = out[i * 4]!), (rgb[i * 3 + 1] = out[i * 4 + 1]!), (rgb[i * 3 + 2] = out[i * 4 + 2]!);
      return { width: w, height: h, data: rgb };
    } else if (tag === 0x3b) {
      throw new ImageError(`${what}: no image in the file`);
    } else {
      throw new ImageError(`${what}: corrupt GIF (block type 0x${tag.toString(16)} at byte ${pos - 1})`);
    }
  }

  /** LZW-coded pixels of one frame into out (RGBA), rows in interlaced order when parse = 3. */
  function raster(w: number, x: number, y: number, fw: number, fh: number, parse: number, table: Uint8Array): void {
    const lzw = u8();
    if (lzw > 12) throw new ImageError(`${what}: corrupt GIF (LZW code size ${lzw})`);
    const line = w * 4;
    const startX = x * 4;
    const startY = y * line;
    const maxX = startX + fw * 4;
    const maxY = startY + fh * line;
    let curX = startX;
    let curY = fw === 0 ? maxY : startY;
    let step = parse ? 8 * line : line;
    const prefix = new Int16Array(8192);
    const first = new Uint8Array(8192);
    const suffix = new Uint8Array(8192);
    const clear = 1 << lzw;
    for (let c = 0; c < clear; c++) (prefix[c] = -1), (first[c] = c), (suffix[c] = c);
    let size = lzw + 1;
    let mask = (1 << size) - 1;
    let avail = clear + 2;
    let old = -1;
    let started = false;
    let bits = 0;
    let valid = 0;
    let len = 0;
    const chain = new Uint16Array(8192);
    const emit = (code: number) => {
      let n = 0;
      for (let c = code; c >= 0; c = prefix[c]!) chain[n++] = c;
      while (n > 0) {
        const c = chain[--n]!;
        if (curY >= maxY) continue;
        const i = curX + curY;
        history[i >> 2] = 1;
        const t = suffix[c]! * 4;
        if (table[t + 3]! > 128) (out[i] = table[t + 2]!), (out[i + 1] = table[t + 1]!), (out[i + 2] = table[t]!), (out[i + 3] = table[t + 3]!);
        curX += 4;
        if (curX >= maxX) {
          curX = startX;
          curY += step;
          while (curY >= maxY && parse > 0) {
            step = (1 << parse) * line;
            curY = startY + (step >> 1);
            parse--;
          }
        }
      }
    };
    for (;;) {
      if (valid < size) {
        if (len === 0) {
          len = u8();
          if (len === 0) return;
        }
        len--;
        bits |= u8() << valid;
        valid += 8;
        continue;
      }
      const code = bits & mask;
      bits >>= size;
      valid -= size;
      if (code === clear) {
        size = lzw + 1;
        mask = (1 << size) - 1;
        avail = clear + 2;
        old = -1;
        started = true;
      } else if (code === clear + 1) {
        skip(len);
        for (let l = u8(); l > 0; l = u8()) skip(l);
        return;
      } else if (code <= avail) {
        if (!started) throw new ImageError(`${what}: corrupt GIF (no clear code)`);
        if (old >= 0) {
          const p = avail++;
          if (avail > 8192) throw new ImageError(`${what}: corrupt GIF (too many codes)`);
          prefix[p] = old;
          first[p] = first[old]!;
          suffix[p] = code === avail ? first[p]! : first[code]!;
        } else if (code === avail) throw new ImageError(`${what}: corrupt GIF (illegal code)`);
        emit(code);
        if ((avail & mask) === 0 && avail <= 0x0fff) {
          size++;
          mask = (1 << size) - 1;
        }
        old = code;
      } else throw new ImageError(`${what}: corrupt GIF (illegal code)`);
    }
  }
}
