// The JPEG entropy decoder and 8x8 inverse DCT, written after stb_image 2.30 (the decoder
// llama.cpp's mtmd-helper uses) so that the pixels come out the same to the byte: its integer
// IDCT (jidctint "islow", 12-bit constants; its SSE2/NEON versions are bit-identical to it),
// coefficients kept as int16 like its `short` blocks. Huffman decoding is plain canonical
// decoding (stb_image's lookup tables are a speed-up that gives the same symbols).
import { ImageError } from './common.js';

/** A canonical Huffman table: maxcode per length (left-aligned to 16 bits), delta to symbol index. */
export interface Huffman {
  maxcode: Uint32Array; // [18], index = code length
  delta: Int32Array; // [17]
  values: Uint8Array; // [256]
}

export function buildHuffman(counts: Uint8Array, values: Uint8Array, what: string): Huffman {
  const maxcode = new Uint32Array(18);
  const delta = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    delta[len] = k - code;
    const n = counts[len - 1]!;
    k += n;
    code += n;
    if (n > 0 && code - 1 >= 1 << len) throw new ImageError(`${what}: corrupt Huffman table (bad code lengths)`);
    maxcode[len] = code << (16 - len);
    code <<= 1;
  }
  maxcode[17] = 0xffffffff;
  return { maxcode, delta, values };
}

// position in the 8x8 block (row-major) of the k-th coefficient in zigzag order; 15 extra
// entries let a corrupt run land on the last coefficient instead of outside the block
export const DEZIGZAG = new Uint8Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45,
  38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

const BMASK = [0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 2047, 4095, 8191, 16383, 32767, 65535];
const JBIAS = [0, -1, -3, -7, -15, -31, -63, -127, -255, -511, -1023, -2047, -4095, -8191, -16383, -32767];
const MARKER_NONE = 0xff;

/** The bit reader of one entropy-coded segment, stb_image's: 32-bit buffer, zeros past a marker. */
export class BitReader {
  buffer = 0; // uint32, next bit in the top bit
  bits = 0;
  nomore = false;
  marker = MARKER_NONE; // the marker that ended the data, if one was met
  eobRun = 0;
  constructor(
    readonly b: Uint8Array,
    public pos: number,
    readonly what: string,
  ) {}

  private get8(): number {
    return this.pos < this.b.length ? this.b[this.pos++]! : 0;
  }

  reset(): void {
    this.buffer = 0;
    this.bits = 0;
    this.nomore = false;
    this.marker = MARKER_NONE;
    this.eobRun = 0;
  }

  fill(): void {
    do {
      let b = this.nomore ? 0 : this.get8();
      if (b === 0xff) {
        let c = this.get8();
        while (c === 0xff) c = this.get8();
        if (c !== 0) {
          this.marker = c;
          this.nomore = true;
          return;
        }
        b = 0xff;
      }
      this.buffer = (this.buffer | (b << (24 - this.bits))) >>> 0;
      this.bits += 8;
    } while (this.bits <= 24);
  }

  decode(h: Huffman): number {
    if (this.bits < 16) this.fill();
    const top = this.buffer >>> 16;
    let k = 1;
    while (top >= h.maxcode[k]!) k++;
    if (k === 17 || k > this.bits) return -1;
    const c = ((this.buffer >>> (32 - k)) & BMASK[k]!) + h.delta[k]!;
    if (c < 0 || c >= 256) return -1;
    this.bits -= k;
    this.buffer = (this.buffer << k) >>> 0;
    return h.values[c]!;
  }

  /** n bits as a signed JPEG magnitude (receive + extend) */
  extend(n: number): number {
    if (this.bits < n) this.fill();
    if (this.bits < n) return 0;
    const sgn = this.buffer >>> 31;
    const rot = ((this.buffer << n) | (this.buffer >>> (32 - n))) >>> 0;
    this.buffer = (rot & ~BMASK[n]!) >>> 0;
    this.bits -= n;
    return (rot & BMASK[n]!) + (JBIAS[n]! & (sgn - 1));
  }

  getBits(n: number): number {
    if (this.bits < n) this.fill();
    if (this.bits < n) return 0;
    const rot = ((this.buffer << n) | (this.buffer >>> (32 - n))) >>> 0;
    this.buffer = (rot & ~BMASK[n]!) >>> 0;
    this.bits -= n;
    return rot & BMASK[n]!;
  }

  getBit(): number {
    if (this.bits < 1) this.fill();
    if (this.bits < 1) return 0;
    const k = this.buffer >>> 31;
    this.buffer = (this.buffer << 1) >>> 0;
    this.bits--;
    return k;
  }

  corrupt(why: string): never {
    throw new ImageError(`${this.what}: corrupt image data (${why} near byte ${this.pos})`);
  }
}

const SHRT_MAX = 32767;
const SHRT_MIN = -32768;
const INT_MAX = 2147483647;
const INT_MIN = -2147483648;
const i16 = (x: number) => (x << 16) >> 16;

function addValid(a: number, b: number): boolean {
  if (a >= 0 !== b >= 0) return true;
  if (a < 0 && b < 0) return a >= INT_MIN - b;
  return a <= INT_MAX - b;
}

function mulShortValid(a: number, b: number): boolean {
  if (b === 0 || b === -1) return true;
  if (a >= 0 === b >= 0) return a <= Math.trunc(SHRT_MAX / b);
  if (b < 0) return a <= Math.trunc(SHRT_MIN / b);
  return a >= Math.trunc(SHRT_MIN / b);
}

/** A component's DC predictor lives here between blocks. */
export interface DcState {
  dcPred: number;
}

/** One sequential (baseline / extended) block, dequantised, into data (row-major). */
export function decodeBlock(r: BitReader, data: Int16Array, hdc: Huffman, hac: Huffman, comp: DcState, dequant: Uint16Array): void {
  const t = r.decode(hdc);
  if (t < 0 || t > 15) r.corrupt('bad Huffman code');
  data.fill(0);
  const diff = t ? r.extend(t) : 0;
  if (!addValid(comp.dcPred, diff)) r.corrupt('bad DC delta');
  const dc = (comp.dcPred += diff);
  if (!mulShortValid(dc, dequant[0]!)) r.corrupt('DC out of range');
  data[0] = i16(dc * dequant[0]!);
  let k = 1;
  do {
    const rs = r.decode(hac);
    if (rs < 0) r.corrupt('bad Huffman code');
    const s = rs & 15;
    const run = rs >> 4;
    if (s === 0) {
      if (rs !== 0xf0) break; // end of block
      k += 16;
    } else {
      k += run;
      const zig = DEZIGZAG[k++]!;
      data[zig] = i16(r.extend(s) * dequant[zig]!);
    }
  } while (k < 64);
}

/** Progressive DC scan (first or refinement) of one block; coefficients stay quantised. */
export function decodeBlockProgDc(r: BitReader, data: Int16Array, hdc: Huffman, comp: DcState, specEnd: number, succHigh: number, succLow: number): void {
  if (specEnd !== 0) r.corrupt('DC scan with AC coefficients');
  if (r.bits < 16) r.fill();
  if (succHigh === 0) {
    data.fill(0);
    const t = r.decode(hdc);
    if (t < 0 || t > 15) r.corrupt('bad Huffman code');
    const diff = t ? r.extend(t) : 0;
    if (!addValid(comp.dcPred, diff)) r.corrupt('bad DC delta');
    const dc = (comp.dcPred += diff);
    if (!mulShortValid(dc, 1 << succLow)) r.corrupt('DC out of range');
    data[0] = i16(dc * (1 << succLow));
  } else if (r.getBit()) {
    data[0] = i16(data[0]! + (1 << succLow));
  }
}

/** Progressive AC scan (first or refinement) of one block. */
export function decodeBlockProgAc(r: BitReader, data: Int16Array, hac: Huffman, specStart: number, specEnd: number, succHigh: number, succLow: number): void {
  if (specStart === 0) r.corrupt('AC scan with the DC coefficient');
  if (succHigh === 0) {
    const shift = succLow;
    if (r.eobRun) {
      r.eobRun--;
      return;
    }
    let k = specStart;
    do {
      const rs = r.decode(hac);
      if (rs < 0) r.corrupt('bad Huffman code');
      const s = rs & 15;
      const run = rs >> 4;
      if (s === 0) {
        if (run < 15) {
          r.eobRun = 1 << run;
          if (run) r.eobRun += r.getBits(run);
          r.eobRun--;
          break;
        }
        k += 16;
      } else {
        k += run;
        const zig = DEZIGZAG[k++]!;
        data[zig] = i16(r.extend(s) * (1 << shift));
      }
    } while (k <= specEnd);
    return;
  }
  // refinement: one more bit of each coefficient already non-zero, new ones of +-1 << succLow
  const bit = 1 << succLow;
  const refine = (p: number) => {
    if (r.getBit() && (data[p]! & bit) === 0) data[p] = i16(data[p]! > 0 ? data[p]! + bit : data[p]! - bit);
  };
  if (r.eobRun) {
    r.eobRun--;
    for (let k = specStart; k <= specEnd; k++) {
      const p = DEZIGZAG[k]!;
      if (data[p] !== 0) refine(p);
    }
    return;
  }
  let k = specStart;
  do {
    const rs = r.decode(hac);
    if (rs < 0) r.corrupt('bad Huffman code');
    let s = rs & 15;
    let run = rs >> 4;
    if (s === 0) {
      if (run < 15) {
        r.eobRun = (1 << run) - 1;
        if (run) r.eobRun += r.getBits(run);
        run = 64; // the rest of the band: only refinements
      }
    } else {
      if (s !== 1) r.corrupt('bad Huffman code');
      s = r.getBit() ? bit : -bit;
    }
    while (k <= specEnd) {
      const p = DEZIGZAG[k++]!;
      if (data[p] !== 0) refine(p);
      else {
        if (run === 0) {
          data[p] = s;
          break;
        }
        run--;
      }
    }
  } while (k <= specEnd);
}

// stbi__f2f: (int)(x * 4096 + 0.5) with x a float constant
const f2f = (x: number) => Math.trunc(Math.fround(x) * 4096 + 0.5);
const C0_541 = f2f(0.5411961);
const C1_847 = f2f(-1.847759065);
const C0_765 = f2f(0.765366865);
const C1_175 = f2f(1.175875602);
const C0_298 = f2f(0.298631336);
const C2_053 = f2f(2.053119869);
const C3_072 = f2f(3.072711026);
const C1_501 = f2f(1.50132111);
const C0_899 = f2f(-0.899976223);
const C2_562 = f2f(-2.562915447);
const C1_961 = f2f(-1.96157056);
const C0_390 = f2f(-0.390180644);

const tmp = new Int32Array(8); // x0..x3, t0..t3 of one 1-D IDCT
/** stb_image's STBI__IDCT_1D on s0..s7 into tmp: [x0, x1, x2, x3, t0, t1, t2, t3] */
function idct1d(s0: number, s1: number, s2: number, s3: number, s4: number, s5: number, s6: number, s7: number): void {
  let p2 = s2;
  let p3 = s6;
  let p1 = (p2 + p3) * C0_541;
  let t2 = p1 + p3 * C1_847;
  let t3 = p1 + p2 * C0_765;
  p2 = s0;
  p3 = s4;
  let t0 = (p2 + p3) * 4096;
  let t1 = (p2 - p3) * 4096;
  const x0 = t0 + t3;
  const x3 = t0 - t3;
  const x1 = t1 + t2;
  const x2 = t1 - t2;
  t0 = s7;
  t1 = s5;
  t2 = s3;
  t3 = s1;
  p3 = t0 + t2;
  let p4 = t1 + t3;
  p1 = t0 + t3;
  p2 = t1 + t2;
  const p5 = (p3 + p4) * C1_175;
  t0 = t0 * C0_298;
  t1 = t1 * C2_053;
  t2 = t2 * C3_072;
  t3 = t3 * C1_501;
  p1 = p5 + p1 * C0_899;
  p2 = p5 + p2 * C2_562;
  p3 = p3 * C1_961;
  p4 = p4 * C0_390;
  tmp[0] = x0;
  tmp[1] = x1;
  tmp[2] = x2;
  tmp[3] = x3;
  tmp[7] = t3 + p1 + p4;
  tmp[6] = t2 + p2 + p3;
  tmp[5] = t1 + p2 + p4;
  tmp[4] = t0 + p1 + p3;
}

const clamp = (x: number) => (x < 0 ? 0 : x > 255 ? 255 : x);
const val = new Int32Array(64);

/** Inverse DCT of one dequantised block into out[o + y * stride + x], level-shifted and clamped. */
export function idctBlock(out: Uint8Array, o: number, stride: number, d: Int16Array): void {
  for (let i = 0; i < 8; i++) {
    if (d[i + 8] === 0 && d[i + 16] === 0 && d[i + 24] === 0 && d[i + 32] === 0 && d[i + 40] === 0 && d[i + 48] === 0 && d[i + 56] === 0) {
      const dc = d[i]! * 4;
      for (let r = 0; r < 64; r += 8) val[i + r] = dc;
    } else {
      idct1d(d[i]!, d[i + 8]!, d[i + 16]!, d[i + 24]!, d[i + 32]!, d[i + 40]!, d[i + 48]!, d[i + 56]!);
      const x0 = tmp[0]! + 512;
      const x1 = tmp[1]! + 512;
      const x2 = tmp[2]! + 512;
      const x3 = tmp[3]! + 512;
      const t0 = tmp[4]!;
      const t1 = tmp[5]!;
      const t2 = tmp[6]!;
      const t3 = tmp[7]!;
      val[i] = (x0 + t3) >> 10;
      val[i + 56] = (x0 - t3) >> 10;
      val[i + 8] = (x1 + t2) >> 10;
      val[i + 48] = (x1 - t2) >> 10;
      val[i + 16] = (x2 + t1) >> 10;
      val[i + 40] = (x2 - t1) >> 10;
      val[i + 24] = (x3 + t0) >> 10;
      val[i + 32] = (x3 - t0) >> 10;
    }
  }
  const bias = 65536 + (128 << 17);
  for (let i = 0; i < 64; i += 8, o += stride) {
    idct1d(val[i]!, val[i + 1]!, val[i + 2]!, val[i + 3]!, val[i + 4]!, val[i + 5]!, val[i + 6]!, val[i + 7]!);
    const x0 = tmp[0]! + bias;
    const x1 = tmp[1]! + bias;
    const x2 = tmp[2]! + bias;
    const x3 = tmp[3]! + bias;
    const t0 = tmp[4]!;
    const t1 = tmp[5]!;
    const t2 = tmp[6]!;
    const t3 = tmp[7]!;
    out[o] = clamp((x0 + t3) >> 17);
    out[o + 7] = clamp((x0 - t3) >> 17);
    out[o + 1] = clamp((x1 + t2) >> 17);
    out[o + 6] = clamp((x1 - t2) >> 17);
    out[o + 2] = clamp((x2 + t1) >> 17);
    out[o + 5] = clamp((x2 - t1) >> 17);
    out[o + 3] = clamp((x3 + t0) >> 17);
    out[o + 4] = clamp((x3 - t0) >> 17);
  }
}
