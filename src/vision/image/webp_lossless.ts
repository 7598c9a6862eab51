// Lossless WebP (VP8L, RFC 9649) to RGB: prefix-coded ARGB with LZ77 back-references, colour
// cache and meta prefix codes, then the four inverse transforms (predictor, cross-colour,
// subtract-green, colour indexing). Lossless means exact: the test compares with the source PNG's
// pixels. Alpha is dropped like the other formats. llama.cpp reads no WebP at all.
import { checkSize, ImageError } from './common.js';

const CODE_LENGTH_ORDER = [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
// distance codes 1..120 as (y << 4) | (8 - x) offsets to nearby pixels (RFC 9649 section 4.2.2)
const CODE_TO_PLANE = [
  0x18, 0x07, 0x17, 0x19, 0x28, 0x06, 0x27, 0x29, 0x16, 0x1a, 0x26, 0x2a, 0x38, 0x05, 0x37, 0x39, 0x15, 0x1b, 0x36, 0x3a, 0x25, 0x2b, 0x48, 0x04, 0x47, 0x49, 0x14, 0x1c, 0x35, 0x3b, 0x46, 0x4a, 0x24,
  0x2c, 0x58, 0x45, 0x4b, 0x34, 0x3c, 0x03, 0x57, 0x59, 0x13, 0x1d, 0x56, 0x5a, 0x23, 0x2d, 0x44, 0x4c, 0x55, 0x5b, 0x33, 0x3d, 0x68, 0x02, 0x67, 0x69, 0x12, 0x1e, 0x66, 0x6a, 0x22, 0x2e, 0x54, 0x5c,
  0x43, 0x4d, 0x65, 0x6b, 0x32, 0x3e, 0x78, 0x01, 0x77, 0x79, 0x53, 0x5d, 0x11, 0x1f, 0x64, 0x6c, 0x42, 0x4e, 0x76, 0x7a, 0x21, 0x2f, 0x75, 0x7b, 0x31, 0x3f, 0x63, 0x6d, 0x52, 0x5e, 0x00, 0x74, 0x7c,
  0x41, 0x4f, 0x10, 0x20, 0x62, 0x6e, 0x30, 0x73, 0x7d, 0x51, 0x5f, 0x40, 0x72, 0x7e, 0x61, 0x6f, 0x50, 0x71, 0x7f, 0x60, 0x70,
];
const TABLE_BITS = 10;

class Bits {
  pos = 0; // in bits
  constructor(
    readonly b: Uint8Array,
    readonly what: string,
  ) {}

  peek(n: number): number {
    const i = this.pos >>> 3;
    const b = this.b;
    const w = (b[i] ?? 0) | ((b[i + 1] ?? 0) << 8) | ((b[i + 2] ?? 0) << 16) | ((b[i + 3] ?? 0) << 24);
    return (w >>> (this.pos & 7)) & ((1 << n) - 1);
  }

  read(n: number): number {
    if (n === 0) return 0;
    const v = this.peek(n);
    this.pos += n;
    if (this.pos > this.b.length * 8 + 64) throw new ImageError(`${this.what}: lossless data is truncated`);
    return v;
  }

  fail(why: string): never {
    throw new ImageError(`${this.what}: corrupt lossless data (${why})`);
  }
}

/** A canonical prefix code read LSB-first: a table on the next TABLE_BITS bits, bit by bit beyond. */
interface Code {
  single: number; // the only symbol (a code of no bits), or -1
  table: Int32Array; // (symbol << 4) | length, or -1 for longer codes
  counts: Int32Array; // codes per length
  sorted: Int32Array; // symbols by (length, value)
}

function buildCode(lengths: Uint8Array, r: Bits): Code {
  const counts = new Int32Array(16);
  let used = 0;
  let last = 0;
  for (let s = 0; s < lengths.length; s++) {
    if (lengths[s]) counts[lengths[s]!]!++, used++, (last = s);
  }
  const empty = { table: new Int32Array(0), counts, sorted: new Int32Array(0) };
  if (used === 0) return { single: 0, ...empty }; // never read in a valid stream
  if (used === 1) return { single: last, ...empty };
  // Kraft: the code must be complete
  let left = 1;
  for (let l = 1; l < 16; l++) {
    left = left * 2 - counts[l]!;
    if (left < 0) r.fail('over-subscribed prefix code');
  }
  if (left !== 0) r.fail('incomplete prefix code');
  const offs = new Int32Array(16);
  for (let l = 1; l < 15; l++) offs[l + 1] = offs[l]! + counts[l]!;
  const sorted = new Int32Array(used);
  for (let s = 0; s < lengths.length; s++) if (lengths[s]) sorted[offs[lengths[s]!]!++] = s;
  const table = new Int32Array(1 << TABLE_BITS).fill(-1);
  let code = 0;
  let k = 0;
  for (let l = 1; l < 16; l++) {
    for (let i = 0; i < counts[l]!; i++, k++, code++) {
      if (l > TABLE_BITS) continue;
      // the code's bits come first-bit-first, i.e. reversed in the LSB-first peek
      let rev = 0;
      for (let j = 0; j < l; j++) rev |= ((code >> j) & 1) << (l - 1 - j);
      for (let f = rev; f < 1 << TABLE_BITS; f += 1 << l) table[f] = (sorted[k]! << 4) | l;
    }
    code <<= 1;
  }
  return { single: -1, table, counts, sorted };
}

function readSymbol(c: Code, r: Bits): number {
  if (c.single >= 0) return c.single;
  const e = c.table[r.peek(TABLE_BITS)]!;
  if (e >= 0) {
    r.pos += e & 15;
    return e >> 4;
  }
  // longer than TABLE_BITS: canonical decoding one bit at a time
  let code = 0;
  let first = 0;
  let index = 0;
  for (let l = 1; l < 16; l++) {
    code |= r.read(1);
    const n = c.counts[l]!;
    if (code - first < n) return c.sorted[index + code - first]!;
    index += n;
    first = (first + n) << 1;
    code <<= 1;
  }
  return r.fail('bad prefix code');
}

function readCode(r: Bits, alphabet: number): Code {
  const lengths = new Uint8Array(alphabet);
  if (r.read(1)) {
    // simple code: one or two symbols
    const two = r.read(1);
    const s0 = r.read(r.read(1) ? 8 : 1);
    if (s0 >= alphabet) r.fail('symbol out of range');
    lengths[s0] = 1;
    if (two) {
      const s1 = r.read(8);
      if (s1 >= alphabet) r.fail('symbol out of range');
      lengths[s1] = 1;
    }
    return two && lengths.reduce((a, b) => a + b, 0) === 2 ? buildCode(lengths, r) : { single: s0, table: new Int32Array(0), counts: new Int32Array(16), sorted: new Int32Array(0) };
  }
  const clen = new Uint8Array(19);
  const n = 4 + r.read(4);
  for (let i = 0; i < n; i++) clen[CODE_LENGTH_ORDER[i]!] = r.read(3);
  const lc = buildCode(clen, r);
  let max = alphabet;
  if (r.read(1)) {
    max = 2 + r.read(2 + 2 * r.read(3));
    if (max > alphabet) r.fail('too many code lengths');
  }
  let prev = 8;
  for (let s = 0; s < alphabet; ) {
    if (max-- === 0) break;
    const l = readSymbol(lc, r);
    if (l < 16) {
      lengths[s++] = l;
      if (l) prev = l;
    } else {
      const repeat = l === 16 ? 3 + r.read(2) : l === 17 ? 3 + r.read(3) : 11 + r.read(7);
      if (s + repeat > alphabet) r.fail('code length repeat past the alphabet');
      lengths.fill(l === 16 ? prev : 0, s, s + repeat);
      s += repeat;
    }
  }
  return buildCode(lengths, r);
}

function lz77(prefix: number, r: Bits): number {
  if (prefix < 4) return prefix + 1;
  const extra = (prefix - 2) >> 1;
  return ((2 + (prefix & 1)) << extra) + r.read(extra) + 1;
}

/** An entropy-coded image of w x h ARGB pixels (the main image when `top`, else a transform's). */
function decodeImage(r: Bits, w: number, h: number, top: boolean): Uint32Array {
  let cacheBits = 0;
  if (r.read(1)) {
    cacheBits = r.read(4);
    if (cacheBits < 1 || cacheBits > 11) r.fail(`colour cache of ${cacheBits} bits`);
  }
  let metaBits = 0;
  let meta: Uint32Array | undefined;
  let metaW = 0;
  let groups = 1;
  if (top && r.read(1)) {
    metaBits = r.read(3) + 2;
    metaW = Math.ceil(w / (1 << metaBits));
    meta = decodeImage(r, metaW, Math.ceil(h / (1 << metaBits)), false);
    for (let i = 0; i < meta.length; i++) groups = Math.max(groups, ((meta[i]! >> 8) & 0xffff) + 1);
  }
  const cacheSize = cacheBits ? 1 << cacheBits : 0;
  const codes: Code[][] = [];
  for (let g = 0; g < groups; g++) codes.push([readCode(r, 256 + 24 + cacheSize), readCode(r, 256), readCode(r, 256), readCode(r, 256), readCode(r, 40)]);
  const cache = new Uint32Array(cacheSize);
  const out = new Uint32Array(w * h);
  const n = w * h;
  let cached = 0; // pixels already in the colour cache
  for (let p = 0; p < n; ) {
    const x = p % w;
    const y = (p / w) | 0;
    const group = codes[meta ? (meta[(y >> metaBits) * metaW + (x >> metaBits)]! >> 8) & 0xffff : 0]!;
    const s = readSymbol(group[0]!, r);
    if (s < 256) {
      const red = readSymbol(group[1]!, r);
      const blue = readSymbol(group[2]!, r);
      const alpha = readSymbol(group[3]!, r);
      out[p++] = ((alpha << 24) | (red << 16) | (s << 8) | blue) >>> 0;
    } else if (s < 280) {
      const len = lz77(s - 256, r);
      const dcode = lz77(readSymbol(group[4]!, r), r);
      let dist: number;
      if (dcode > 120) dist = dcode - 120;
      else {
        const plane = CODE_TO_PLANE[dcode - 1]!;
        dist = Math.max(1, (plane >> 4) * w + 8 - (plane & 15));
      }
      if (dist > p || p + len > n) r.fail(`back-reference of ${len} pixels at distance ${dist} from pixel ${p}`);
      for (let i = 0; i < len; i++, p++) out[p] = out[p - dist]!;
    } else {
      const i = s - 280;
      if (i >= cacheSize) r.fail('colour cache index out of range');
      while (cached < p) insert(cache, cacheBits, out[cached++]!);
      out[p++] = cache[i]!;
    }
    if (cacheSize) while (cached < p) insert(cache, cacheBits, out[cached++]!);
    if (r.pos > r.b.length * 8 + 64) r.fail('data ends early');
  }
  return out;
}

function insert(cache: Uint32Array, bits: number, argb: number): void {
  cache[Math.imul(argb, 0x1e35a7bd) >>> (32 - bits)] = argb;
}

const add = (a: number, b: number) => ((((a >>> 24) + (b >>> 24)) & 255) << 24) | ((((a >>> 16) + (b >>> 16)) & 255) << 16) | ((((a >>> 8) + (b >>> 8)) & 255) << 8) | ((a + b) & 255);
const avg = (a: number, b: number) => ((((a ^ b) & 0xfefefefe) >>> 1) + (a & b)) >>> 0;
const ch = (v: number, s: number) => (v >>> s) & 255;
const clip = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

function select(l: number, t: number, tl: number): number {
  let pl = 0;
  let pt = 0;
  for (let s = 0; s < 32; s += 8) {
    const p = ch(l, s) + ch(t, s) - ch(tl, s);
    pl += Math.abs(p - ch(l, s));
    pt += Math.abs(p - ch(t, s));
  }
  return pl < pt ? l : t;
}

function clampFull(a: number, b: number, c: number): number {
  let v = 0;
  for (let s = 0; s < 32; s += 8) v |= clip(ch(a, s) + ch(b, s) - ch(c, s)) << s;
  return v >>> 0;
}

function clampHalf(a: number, b: number): number {
  let v = 0;
  for (let s = 0; s < 32; s += 8) v |= clip(ch(a, s) + Math.trunc((ch(a, s) - ch(b, s)) / 2)) << s;
  return v >>> 0;
}

function predict(mode: number, px: Uint32Array, p: number, w: number): number {
  const l = px[p - 1]!;
  const t = px[p - w]!;
  const tr = px[p - w + 1]!;
  const tl = px[p - w - 1]!;
  switch (mode) {
    case 0:
      return 0xff000000;
    case 1:
      return l;
    case 2:
      return t;
    case 3:
      return tr;
    case 4:
      return tl;
    case 5:
      return avg(avg(l, tr), t);
    case 6:
      return avg(l, tl);
    case 7:
      return avg(l, t);
    case 8:
      return avg(tl, t);
    case 9:
      return avg(t, tr);
    case 10:
      return avg(avg(l, tl), avg(t, tr));
    case 11:
      return select(l, t, tl);
    case 12:
      return clampFull(l, t, tl);
    case 13:
      return clampHalf(avg(l, t), tl);
    default:
      return 0xff000000; // modes 14, 15: as libwebp (the spec leaves them unused)
  }
}

const s8 = (v: number) => (v << 24) >> 24;

type Transform = (px: Uint32Array, w: number, h: number) => Uint32Array;

/** Lossless WebP bitstream (after the 'VP8L' chunk header) to RGB. */
export function decodeVp8l(data: Uint8Array, what: string, maxPixels: number): { width: number; height: number; rgb: Uint8Array } {
  const r = new Bits(data, what);
  if (r.read(8) !== 0x2f) r.fail('bad signature');
  const width = r.read(14) + 1;
  const height = r.read(14) + 1;
  r.read(1); // alpha hint
  if (r.read(3) !== 0) r.fail('unknown version');
  checkSize(width, height, maxPixels, what); // the bitstream's own size, which a VP8X header may misstate
  let w = width; // colour indexing packs pixels: the transforms read after it see fewer columns
  const transforms: { fn: Transform; w: number }[] = [];
  const seen = new Set<number>();
  while (r.read(1)) {
    const type = r.read(2);
    if (seen.has(type)) r.fail(`transform ${type} used twice`);
    seen.add(type);
    if (type === 0 || type === 1) {
      const bits = r.read(3) + 2;
      const bw = Math.ceil(w / (1 << bits));
      const sub = decodeImage(r, bw, Math.ceil(height / (1 << bits)), false);
      transforms.push({ fn: type === 0 ? predictor(sub, bits, bw) : crossColour(sub, bits, bw), w });
    } else if (type === 2) {
      transforms.push({
        w,
        fn: (px) => {
          for (let i = 0; i < px.length; i++) {
            const v = px[i]!;
            const g = (v >>> 8) & 255;
            px[i] = ((v & 0xff00ff00) | ((((v >>> 16) + g) & 255) << 16) | ((v + g) & 255)) >>> 0;
          }
          return px;
        },
      });
    } else {
      const size = r.read(8) + 1;
      const table = decodeImage(r, size, 1, false);
      for (let i = 1; i < size; i++) table[i] = add(table[i]!, table[i - 1]!) >>> 0;
      const bits = size <= 2 ? 3 : size <= 4 ? 2 : size <= 16 ? 1 : 0;
      const full = w;
      w = Math.ceil(w / (1 << bits));
      transforms.push({ fn: colourIndexing(table, bits, full), w });
    }
  }
  let px = decodeImage(r, w, height, true);
  for (let i = transforms.length - 1; i >= 0; i--) px = transforms[i]!.fn(px, transforms[i]!.w, height);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, o = 0; i < width * height; i++, o += 3) {
    const v = px[i]!;
    rgb[o] = (v >>> 16) & 255;
    rgb[o + 1] = (v >>> 8) & 255;
    rgb[o + 2] = v & 255;
  }
  return { width, height, rgb };
}

function predictor(sub: Uint32Array, bits: number, bw: number): Transform {
  return (px, w, h) => {
    px[0] = add(px[0]!, 0xff000000) >>> 0;
    for (let x = 1; x < w; x++) px[x] = add(px[x]!, px[x - 1]!) >>> 0;
    for (let y = 1; y < h; y++) {
      const row = y * w;
      px[row] = add(px[row]!, px[row - w]!) >>> 0;
      for (let x = 1; x < w; x++) {
        const mode = (sub[(y >> bits) * bw + (x >> bits)]! >> 8) & 15;
        px[row + x] = add(px[row + x]!, predict(mode, px, row + x, w)) >>> 0;
      }
    }
    return px;
  };
}

function crossColour(sub: Uint32Array, bits: number, bw: number): Transform {
  return (px, w, h) => {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const m = sub[(y >> bits) * bw + (x >> bits)]!;
        const g2r = s8(m & 255);
        const g2b = s8((m >>> 8) & 255);
        const r2b = s8((m >>> 16) & 255);
        const p = y * w + x;
        const v = px[p]!;
        const g = s8((v >>> 8) & 255);
        const red = (((v >>> 16) & 255) + ((g2r * g) >> 5)) & 255;
        const blue = ((v & 255) + ((g2b * g) >> 5) + ((r2b * s8(red)) >> 5)) & 255;
        px[p] = ((v & 0xff00ff00) | (red << 16) | blue) >>> 0;
      }
    }
    return px;
  };
}

function colourIndexing(table: Uint32Array, bits: number, full: number): Transform {
  return (px, w, h) => {
    const out = new Uint32Array(full * h);
    const per = 1 << bits;
    const size = 8 >> bits;
    const mask = (1 << size) - 1;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < full; x++) {
        const g = (px[y * w + (x >> bits)]! >>> 8) & 255;
        const i = (g >> (size * (x & (per - 1)))) & mask;
        out[y * full + x] = i < table.length ? table[i]! : 0;
      }
    }
    return out;
  };
}
