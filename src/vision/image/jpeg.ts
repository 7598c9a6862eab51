// JPEG to RGB bytes, the way llama.cpp gets them: stb_image 2.30 with 3 channels requested
// (mtmd-helper's stbi_load_from_memory). Baseline, extended and progressive Huffman JPEGs, grey,
// YCbCr, RGB (component ids 'R','G','B' or Adobe transform 0), Adobe CMYK / YCCK; chroma
// upsampled as stb_image does (triangle filter for 2x, nearest otherwise) and converted with its
// 20-bit fixed-point YCbCr formula. Unlike stb_image, which fills a truncated file with grey,
// a file without its end-of-image marker is refused. The block decoding and IDCT are in jpeg_blocks.ts.
import type { RgbImage } from '../types.js';
import { checkSize, ImageError, type ImageInfo, u16be } from './common.js';
import { BitReader, buildHuffman, DEZIGZAG, decodeBlock, decodeBlockProgAc, decodeBlockProgDc, type Huffman, idctBlock } from './jpeg_blocks.js';

interface Header extends ImageInfo {
  sof: number; // 0xc0.. frame marker
  precision: number;
  components: number;
  sos: number; // byte offset of the first start-of-scan marker (-1 if the header ends before it)
}

const SOF_NAMES = new Map<number, string>([
  [0xc3, 'lossless'],
  [0xc5, 'differential sequential'],
  [0xc6, 'differential progressive'],
  [0xc7, 'differential lossless'],
  [0xc9, 'arithmetic-coded sequential'],
  [0xca, 'arithmetic-coded progressive'],
  [0xcb, 'arithmetic-coded lossless'],
  [0xcd, 'differential arithmetic-coded sequential'],
  [0xce, 'differential arithmetic-coded progressive'],
  [0xcf, 'differential arithmetic-coded lossless'],
]);

/** Walks the markers up to the frame header (and the first scan, when present). */
export function jpegHeader(b: Uint8Array, what: string): Header {
  let pos = 2;
  let h: Header | undefined;
  while (pos < b.length) {
    if (b[pos] !== 0xff) throw new ImageError(`${what}: corrupt marker at byte ${pos} (0x${b[pos]!.toString(16)} where 0xff was expected)`);
    while (b[pos] === 0xff) pos++; // fill bytes
    if (pos >= b.length) break;
    const m = b[pos]!;
    const at = pos - 1;
    pos++;
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // markers without a length
    if (m === 0xd9) {
      if (h) return h; // sos -1: decodeJpeg refuses it after the size checks
      throw new ImageError(`${what}: end of image before any frame header`);
    }
    if (pos + 2 > b.length) break;
    const len = u16be(b, pos);
    if (len < 2) throw new ImageError(`${what}: corrupt segment length ${len} at byte ${pos}`);
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (pos + 8 > b.length) break;
      if (h) throw new ImageError(`${what}: more than one frame header`);
      h = { format: 'jpeg', sof: m, precision: b[pos + 2]!, height: u16be(b, pos + 3), width: u16be(b, pos + 5), components: b[pos + 7]!, sos: -1 };
    } else if (m === 0xda) {
      if (!h) throw new ImageError(`${what}: scan before the frame header`);
      h.sos = at;
      return h;
    }
    pos += len;
  }
  if (h) return h;
  throw new ImageError(`${what}: file is truncated (no frame header in ${b.length} bytes)`);
}

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  hd: number;
  ha: number;
  dcPred: number;
  x: number; // samples across / down this component really has
  y: number;
  w2: number; // stored size, whole MCUs
  h2: number;
  data: Uint8Array; // [h2, w2] samples after the IDCT
  coeff?: Int16Array; // progressive: [h2 / 8, w2 / 8, 64] coefficients until the end
}

export function decodeJpeg(b: Uint8Array, what: string, maxPixels: number): RgbImage {
  const h = jpegHeader(b, what);
  const kind = SOF_NAMES.get(h.sof);
  if (kind) throw new ImageError(`${what}: ${kind} JPEG is not supported (baseline and progressive are)`);
  if (h.precision !== 8) throw new ImageError(`${what}: ${h.precision}-bit JPEG is not supported (8-bit only)`);
  if (![1, 3, 4].includes(h.components)) throw new ImageError(`${what}: JPEG with ${h.components} components is not supported`);
  checkSize(h.width, h.height, maxPixels, what);
  if (h.sos < 0) throw new ImageError(`${what}: file is truncated (no image data after the header)`);
  // entropy-coded data cannot hold 0xff 0xd9 (a 0xff data byte is followed by 0x00), so a missing
  // end-of-image marker after the first scan means the file was cut
  let end = -1;
  for (let i = b.length - 2; i > h.sos; i--) {
    if (b[i] === 0xff && b[i + 1] === 0xd9) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ImageError(`${what}: file is truncated (no end-of-image marker)`);
  return new Decoder(b.subarray(0, end + 2), what).decode();
}

class Decoder {
  pos = 2; // after SOI
  dequant = [0, 1, 2, 3].map(() => new Uint16Array(64));
  hdc: (Huffman | undefined)[] = [];
  hac: (Huffman | undefined)[] = [];
  restartInterval = 0;
  jfif = false;
  adobeTransform = -1;
  progressive = false;
  comps: Component[] = [];
  width = 0;
  height = 0;
  hmax = 1;
  vmax = 1;
  mcuX = 0;
  mcuY = 0;
  pending = 0xff; // a marker the bit reader stopped at (0xff: none)

  constructor(
    readonly b: Uint8Array,
    readonly what: string,
  ) {}

  private u8(): number {
    return this.pos < this.b.length ? this.b[this.pos++]! : 0;
  }

  private u16(): number {
    return (this.u8() << 8) | this.u8();
  }

  private corrupt(why: string): never {
    throw new ImageError(`${this.what}: corrupt JPEG (${why} at byte ${this.pos})`);
  }

  private marker(): number {
    if (this.pending !== 0xff) {
      const m = this.pending;
      this.pending = 0xff;
      return m;
    }
    let x = this.u8();
    if (x !== 0xff) return 0xff;
    while (x === 0xff && this.pos < this.b.length) x = this.u8();
    return x;
  }

  decode(): RgbImage {
    let m = this.marker();
    while (m !== 0xc0 && m !== 0xc1 && m !== 0xc2) {
      this.segment(m);
      m = this.marker();
    }
    this.progressive = m === 0xc2;
    this.frame();
    m = this.marker();
    while (m !== 0xd9) {
      if (m === 0xda) {
        this.scan();
        m = this.marker();
        if (m >= 0xd0 && m <= 0xd7) m = this.marker();
      } else if (m === 0xdc) {
        if (this.u16() !== 4) this.corrupt('bad DNL length');
        if (this.u16() !== this.height) this.corrupt('DNL height differs from the frame header');
        m = this.marker();
      } else {
        this.segment(m);
        m = this.marker();
      }
    }
    if (this.progressive) this.finish();
    return this.toRgb();
  }

  /** Tables and application segments (anything but frames and scans). */
  private segment(m: number): void {
    if (m === 0xdd) {
      if (this.u16() !== 4) this.corrupt('bad DRI length');
      this.restartInterval = this.u16();
      return;
    }
    if (m === 0xdb) {
      let len = this.u16() - 2;
      while (len > 0) {
        const q = this.u8();
        const sixteen = q >> 4;
        const t = q & 15;
        if (sixteen > 1 || t > 3) this.corrupt('bad DQT table');
        for (let i = 0; i < 64; i++) this.dequant[t]![DEZIGZAG[i]!] = sixteen ? this.u16() : this.u8();
        len -= sixteen ? 129 : 65;
      }
      if (len !== 0) this.corrupt('bad DQT length');
      return;
    }
    if (m === 0xc4) {
      let len = this.u16() - 2;
      while (len > 0) {
        const q = this.u8();
        const tc = q >> 4;
        const th = q & 15;
        if (tc > 1 || th > 3) this.corrupt('bad DHT header');
        const counts = new Uint8Array(16);
        let n = 0;
        for (let i = 0; i < 16; i++) n += counts[i] = this.u8();
        if (n > 256) this.corrupt('bad DHT header');
        const values = new Uint8Array(256);
        for (let i = 0; i < n; i++) values[i] = this.u8();
        (tc === 0 ? this.hdc : this.hac)[th] = buildHuffman(counts, values, this.what);
        len -= 17 + n;
      }
      if (len !== 0) this.corrupt('bad DHT length');
      return;
    }
    if ((m >= 0xe0 && m <= 0xef) || m === 0xfe) {
      const len = this.u16();
      if (len < 2) this.corrupt(`bad ${m === 0xfe ? 'COM' : 'APP'} length`);
      const start = this.pos;
      const tag = (s: string) => s.split('').every((c, i) => this.b[start + i] === c.charCodeAt(0));
      if (m === 0xe0 && len - 2 >= 5 && tag('JFIF\0')) this.jfif = true;
      if (m === 0xee && len - 2 >= 12 && tag('Adobe\0')) this.adobeTransform = this.b[start + 11] ?? -1;
      this.pos = start + len - 2;
      return;
    }
    if (m === 0xff) this.corrupt('expected a marker');
    this.corrupt(`unexpected marker 0x${m.toString(16)}`);
  }

  private frame(): void {
    const len = this.u16();
    this.u8(); // precision: checked on the header
    this.height = this.u16();
    this.width = this.u16();
    const n = this.u8();
    if (len !== 8 + 3 * n) this.corrupt('bad SOF length');
    for (let i = 0; i < n; i++) {
      const id = this.u8();
      const q = this.u8();
      const tq = this.u8();
      const c = { id, h: q >> 4, v: q & 15, tq, hd: 0, ha: 0, dcPred: 0, x: 0, y: 0, w2: 0, h2: 0, data: new Uint8Array(0) };
      if (!c.h || c.h > 4 || !c.v || c.v > 4 || tq > 3) this.corrupt('bad sampling factors or quantisation table');
      this.comps.push(c);
      this.hmax = Math.max(this.hmax, c.h);
      this.vmax = Math.max(this.vmax, c.v);
    }
    this.mcuX = Math.ceil(this.width / (this.hmax * 8));
    this.mcuY = Math.ceil(this.height / (this.vmax * 8));
    for (const c of this.comps) {
      if (this.hmax % c.h || this.vmax % c.v) this.corrupt('bad sampling factors');
      c.x = Math.ceil((this.width * c.h) / this.hmax);
      c.y = Math.ceil((this.height * c.v) / this.vmax);
      c.w2 = this.mcuX * c.h * 8;
      c.h2 = this.mcuY * c.v * 8;
      c.data = new Uint8Array(c.w2 * c.h2);
      if (this.progressive) c.coeff = new Int16Array(c.w2 * c.h2);
    }
  }

  private scan(): void {
    const len = this.u16();
    const n = this.u8();
    if (n < 1 || n > 4 || n > this.comps.length || len !== 6 + 2 * n) this.corrupt('bad SOS header');
    const order: Component[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.u8();
      const q = this.u8();
      const c = this.comps.find((c) => c.id === id);
      if (!c) this.corrupt(`scan of unknown component ${id}`);
      c.hd = q >> 4;
      c.ha = q & 15;
      if (c.hd > 3 || c.ha > 3) this.corrupt('bad Huffman table index');
      order.push(c);
    }
    const ss = this.u8();
    let se = this.u8();
    const a = this.u8();
    const ah = a >> 4;
    const al = a & 15;
    if (this.progressive) {
      if (ss > 63 || se > 63 || ss > se || ah > 13 || al > 13) this.corrupt('bad progressive scan parameters');
    } else {
      if (ss !== 0 || ah !== 0 || al !== 0) this.corrupt('bad scan parameters');
      se = 63;
    }
    const r = new BitReader(this.b, this.pos, this.what);
    const table = (t: (Huffman | undefined)[], i: number, kind: string) => t[i] ?? this.corrupt(`scan uses ${kind} Huffman table ${i}, never defined`);
    const block = new Int16Array(64);
    const one = (c: Component, bx: number, by: number) => {
      if (!this.progressive) {
        decodeBlock(r, block, table(this.hdc, c.hd, 'DC'), table(this.hac, c.ha, 'AC'), c, this.dequant[c.tq]!);
        idctBlock(c.data, by * 8 * c.w2 + bx * 8, c.w2, block);
        return;
      }
      const data = c.coeff!.subarray(64 * (bx + (by * c.w2) / 8), 64 * (bx + 1 + (by * c.w2) / 8));
      if (ss === 0) decodeBlockProgDc(r, data, ah === 0 ? table(this.hdc, c.hd, 'DC') : (undefined as unknown as Huffman), c, se, ah, al);
      else decodeBlockProgAc(r, data, table(this.hac, c.ha, 'AC'), ss, se, ah, al);
    };
    // a restart interval counts MCUs; after it the reader must sit on an RSTn marker
    let todo = 0;
    const reset = () => {
      r.reset();
      for (const c of this.comps) c.dcPred = 0;
      todo = this.restartInterval || 0x7fffffff;
    };
    const mcuDone = (): boolean => {
      if (--todo > 0) return true;
      if (r.bits < 24) r.fill();
      if (!(r.marker >= 0xd0 && r.marker <= 0xd7)) return false;
      reset();
      return true;
    };
    // a restart interval that does not end on an RSTn marker ends the scan (stb_image keeps what it has)
    const blocks = (): void => {
      if (n === 1) {
        // non-interleaved: the component's own blocks in raster order
        const c = order[0]!;
        const w = Math.ceil(c.x / 8);
        const hh = Math.ceil(c.y / 8);
        for (let j = 0; j < hh; j++) {
          for (let i = 0; i < w; i++) {
            one(c, i, j);
            if (!mcuDone()) return;
          }
        }
        return;
      }
      for (let j = 0; j < this.mcuY; j++) {
        for (let i = 0; i < this.mcuX; i++) {
          for (const c of order) for (let y = 0; y < c.v; y++) for (let x = 0; x < c.h; x++) one(c, i * c.h + x, j * c.v + y);
          if (!mcuDone()) return;
        }
      }
    };
    reset();
    blocks();
    // continue after the entropy-coded data: at the marker the reader met, or past any junk
    this.pos = r.pos;
    if (r.marker !== 0xff) this.pending = r.marker;
    else {
      while (this.pos < this.b.length) {
        let x = this.u8();
        while (x === 0xff && this.pos < this.b.length) {
          x = this.u8();
          if (x !== 0 && x !== 0xff) {
            this.pending = x;
            return;
          }
        }
      }
    }
  }

  /** Progressive: dequantise and transform every block once all scans are in. */
  private finish(): void {
    for (const c of this.comps) {
      const q = this.dequant[c.tq]!;
      const cw = c.w2 / 8;
      for (let j = 0; j < Math.ceil(c.y / 8); j++) {
        for (let i = 0; i < Math.ceil(c.x / 8); i++) {
          const data = c.coeff!.subarray(64 * (i + j * cw), 64 * (i + 1 + j * cw));
          for (let k = 0; k < 64; k++) data[k] = data[k]! * q[k]!; // Int16Array: wraps like stb_image's short
          idctBlock(c.data, j * 8 * c.w2 + i * 8, c.w2, data);
        }
      }
    }
  }

  private toRgb(): RgbImage {
    const { width, height, comps } = this;
    const out = new Uint8Array(width * height * 3);
    const n = comps.length;
    const isRgb = n === 3 && (comps.every((c, i) => c.id === 'RGB'.charCodeAt(i)) || (this.adobeTransform === 0 && !this.jfif));
    const res = comps.map((c) => upsampler(c, this.hmax / c.h, this.vmax / c.v, width));
    const rows: Uint8Array[] = [];
    for (let j = 0; j < height; j++) {
      for (let k = 0; k < n; k++) rows[k] = res[k]!();
      let o = j * width * 3;
      const y = rows[0]!;
      if (n === 1) {
        for (let i = 0; i < width; i++, o += 3) out[o] = out[o + 1] = out[o + 2] = y[i]!;
      } else if (isRgb) {
        for (let i = 0; i < width; i++, o += 3) (out[o] = y[i]!), (out[o + 1] = rows[1]![i]!), (out[o + 2] = rows[2]![i]!);
      } else if (n === 4 && this.adobeTransform === 0) {
        // CMYK (Adobe's inverted convention): channel * K / 255, rounded as stb_image does
        const kk = rows[3]!;
        for (let i = 0; i < width; i++, o += 3) for (let c = 0; c < 3; c++) out[o + c] = blinn(rows[c]![i]!, kk[i]!);
      } else {
        ycbcrRow(out, o, y, rows[1]!, rows[2]!, width);
        if (n === 4 && this.adobeTransform === 2) {
          // YCCK: YCbCr to RGB, inverted, times K
          const kk = rows[3]!;
          for (let i = 0; i < width; i++, o += 3) for (let c = 0; c < 3; c++) out[o + c] = blinn(255 - out[o + c]!, kk[i]!);
        }
      }
    }
    return { width, height, data: out };
  }
}

function blinn(x: number, y: number): number {
  const t = x * y + 128;
  return (t + (t >>> 8)) >>> 8;
}

// stb_image's reduced-precision YCbCr constants: ((int)(x * 4096.0f + 0.5f)) << 8
const fix = (x: number) => Math.trunc(Math.fround(Math.fround(Math.fround(x) * 4096) + 0.5)) << 8;
const CR_R = fix(1.402);
const CR_G = -fix(0.71414);
const CB_G = -fix(0.34414);
const CB_B = fix(1.772);

function ycbcrRow(out: Uint8Array, o: number, y: Uint8Array, cb: Uint8Array, cr: Uint8Array, n: number): void {
  for (let i = 0; i < n; i++, o += 3) {
    const yf = (y[i]! << 20) + (1 << 19);
    const r = cr[i]! - 128;
    const b = cb[i]! - 128;
    out[o] = clamp((yf + r * CR_R) >> 20);
    out[o + 1] = clamp((yf + r * CR_G + ((b * CB_G) & 0xffff0000)) >> 20);
    out[o + 2] = clamp((yf + b * CB_B) >> 20);
  }
}

const clamp = (x: number) => (x < 0 ? 0 : x > 255 ? 255 : x);

/** A function giving one full-width row of a component per call, upsampled as stb_image does. */
function upsampler(c: Component, hs: number, vs: number, width: number): () => Uint8Array {
  const wLores = Math.ceil(width / hs);
  const line = new Uint8Array(width + 3);
  const d = c.data;
  let ystep = vs >> 1;
  let ypos = 0;
  let line0 = 0;
  let line1 = 0;
  return () => {
    const bottom = ystep >= vs >> 1;
    const near = bottom ? line1 : line0;
    const far = bottom ? line0 : line1;
    let row: Uint8Array;
    if (hs === 1 && vs === 1) row = d.subarray(near, near + c.w2);
    else if (hs === 1 && vs === 2) {
      for (let i = 0; i < wLores; i++) line[i] = (3 * d[near + i]! + d[far + i]! + 2) >> 2;
      row = line;
    } else if (hs === 2 && vs === 1) {
      resampleH2(line, d, near, wLores);
      row = line;
    } else if (hs === 2 && vs === 2) {
      resampleHV2(line, d, near, far, wLores);
      row = line;
    } else {
      for (let i = 0; i < wLores; i++) for (let j = 0; j < hs; j++) line[i * hs + j] = d[near + i]!;
      row = line;
    }
    if (++ystep >= vs) {
      ystep = 0;
      line0 = line1;
      if (++ypos < c.y) line1 += c.w2;
    }
    return row;
  };
}

function resampleH2(out: Uint8Array, d: Uint8Array, p: number, w: number): void {
  if (w === 1) {
    out[0] = out[1] = d[p]!;
    return;
  }
  out[0] = d[p]!;
  out[1] = (d[p]! * 3 + d[p + 1]! + 2) >> 2;
  let i = 1;
  for (; i < w - 1; i++) {
    const n = 3 * d[p + i]! + 2;
    out[i * 2] = (n + d[p + i - 1]!) >> 2;
    out[i * 2 + 1] = (n + d[p + i + 1]!) >> 2;
  }
  out[i * 2] = (d[p + w - 2]! * 3 + d[p + w - 1]! + 2) >> 2;
  out[i * 2 + 1] = d[p + w - 1]!;
}

function resampleHV2(out: Uint8Array, d: Uint8Array, near: number, far: number, w: number): void {
  if (w === 1) {
    out[0] = out[1] = (3 * d[near]! + d[far]! + 2) >> 2;
    return;
  }
  let t1 = 3 * d[near]! + d[far]!;
  out[0] = (t1 + 2) >> 2;
  for (let i = 1; i < w; i++) {
    const t0 = t1;
    t1 = 3 * d[near + i]! + d[far + i]!;
    out[i * 2 - 1] = (3 * t0 + t1 + 8) >> 4;
    out[i * 2] = (3 * t1 + t0 + 8) >> 4;
  }
  out[w * 2 - 1] = (t1 + 2) >> 2;
}
