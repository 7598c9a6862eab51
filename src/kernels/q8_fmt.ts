// The legacy block formats that the int8 kernels (q8.ts, q8_tile.ts) take, as a type parameter
// W of those kernels: every format is blocks of 32 integer weights with an f16 scale d, and
// only how a block's integers are loaded (and whether it has a min) differs. AssemblyScript has
// no value generics, so each format is named by a number type, used as a marker only:
//
//   W    format  bytes  layout                                  weight
//   i8   Q8_0    34     d, 32 int8                               d * q
//   u8   Q4_0    18     d, 16 bytes of nibbles                   d * (q4 - 8)
//   u16  Q4_1    20     d, m, 16 bytes of nibbles                d * q4 + m
//   i16  Q5_0    22     d, qh (u32), 16 bytes of nibbles         d * (q5 - 16)
//   u32  Q5_1    24     d, m, qh (u32), 16 bytes of nibbles      d * q5 + m
//   i32  IQ4_NL  18     d, 16 bytes of nibbles                   d * kvalues_iq4nl[q4]
//
// Nibbles: byte j holds weight j (low) and weight j + 16 (high); q5 = nibble | (bit j of qh) << 4
// for weight j (ggml's layout). IQ4_NL's nibbles index ggml's table kvalues_iq4nl (-127..113),
// looked up by a byte swizzle. The integers as loaded (q, q4 - 8, q4, q5 - 16, q5, kv) all fit int8,
// so every kernel's integer dot is exact; the min types (Q4_1, Q5_1) add m times the sum of the
// activations, ggml's Q8_1 term (see q8.ts).
import { f16 } from './common';

export type Q8_0 = i8;
export type Q4_0 = u8;
export type Q4_1 = u16;
export type Q5_0 = i16;
export type Q5_1 = u32;
export type IQ4_NL = i32;

// Vector constants, loaded where used: V8 (11.3) builds a v128.const from immediates at every use
// (three or four instructions), a load from this static block is one, often folded into the op
// (as kq.ts found for the K-quants).
const QC = memory.data<u8>([
  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
  16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
  1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128,
  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
  2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
  0x81, 0x98, 0xad, 0xbf, 0xcf, 0xdd, 0xea, 0xf6, 1, 13, 25, 38, 53, 69, 89, 113, // kvalues_iq4nl
], 16);
@inline function c15(): v128 { return v128.load(QC); }
@inline function c16(): v128 { return v128.load(QC, 16); }
@inline function cbits(): v128 { return v128.load(QC, 32); }
@inline function csel(h: i32): v128 { return h == 0 ? v128.load(QC, 48) : v128.load(QC, 64); }
@inline function ckv(): v128 { return v128.load(QC, 80); }

/** Bytes per block of 32 weights. */
@inline export function bsz<W>(): usize {
  if (sizeof<W>() == 1) return isSigned<W>() ? 34 : 18;
  if (sizeof<W>() == 2) return isSigned<W>() ? 22 : 20;
  return isSigned<W>() ? 18 : 24;
}

/** Whether the format has a min m (Q4_1, Q5_1): at byte 2 of the block. */
@inline export function hasMin<W>(): bool {
  return !isSigned<W>() && sizeof<W>() > 1;
}

/** Whether the format has the fifth bits qh (Q5_0, Q5_1). */
@inline function hasHigh<W>(): bool {
  return (sizeof<W>() == 4 && !isSigned<W>()) || (sizeof<W>() == 2 && isSigned<W>());
}

/** Byte offset of the integers (int8 or nibbles) in a block. */
@inline function qoff<W>(): usize {
  return bsz<W>() - (sizeof<W>() == 1 && isSigned<W>() ? 32 : 16);
}

/** The block scale d of the block at p. */
@inline export function dscale(p: usize): f32 {
  return f16(p);
}

/** The block min m of the block at p (min formats only). */
@inline export function mscale(p: usize): f32 {
  return f16(p + 2);
}

/** The nibble formats' offset: weight integer = uvec - woff (Q4_0: 8, Q5_0: 16, else 0). */
@inline export function woff<W>(): i32 {
  if (sizeof<W>() == 1) return isSigned<W>() ? 0 : 8;
  return sizeof<W>() == 2 && isSigned<W>() ? 16 : 0;
}

/** Whether the nibbles index a table of signed values (IQ4_NL) rather than being the integers. */
@inline export function lut<W>(): bool {
  return sizeof<W>() == 4 && isSigned<W>();
}

/** Whether the format stores nibbles (everything but Q8_0). */
@inline export function nibbles<W>(): bool {
  return !(sizeof<W>() == 1 && isSigned<W>());
}

/**
 * Nibble formats: weights 16*h .. 16*h+15 of the block at p as stored, unsigned (q4 0..15 or q5
 * 0..31, before woff), h a constant: the unsigned operand of the relaxed one-token kernel.
 */
@inline export function uvec<W>(p: usize, h: i32): v128 {
  // high nibbles by a 16-bit shift under the mask (x64 has no byte shift: V8 emulates it)
  const q = v128.load(p + qoff<W>());
  const n = v128.and(h == 0 ? q : i16x8.shr_u(q, 4), c15());
  if (!hasHigh<W>()) return n;
  // bits 16h..16h+15 of qh: its byte 2h to lanes 0-7, byte 2h+1 to lanes 8-15 (relaxed: one
  // pshufb by a loaded mask; V8 builds a shuffle's mask from immediates), then each lane keeps
  // its own bit (lane j: bit j & 7), as a 0 / -1 mask, and puts it at bit 4
  const hb = v128.load32_splat(p + qoff<W>() - 4);
  let sel: v128;
  if (ASC_FEATURE_RELAXED_SIMD) sel = i8x16.relaxed_swizzle(hb, csel(h)); // indices < 16: every lowering agrees
  else if (h == 0) sel = i8x16.shuffle(hb, hb, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  else sel = i8x16.shuffle(hb, hb, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const bit = cbits();
  return v128.or(n, v128.and(i8x16.eq(v128.and(sel, bit), bit), c16()));
}

/**
 * Relaxed one-token kernel, nibble formats: i16x8 lanes of the dot of the block at p, unsigned as
 * stored (uvec's values), with the signed activation halves a0, a1: two relaxed dots summed
 * (lanes at most 4 * 127 * 31, no saturation; the caller widens). Both halves from one load of
 * the nibbles and one of qh: V8 does not merge repeated loads (Q5_0 4864x896, one thread, T=1:
 * 0.60 -> 0.45 ms against two uvec calls).
 */
@inline export function udot2<W>(p: usize, a0: v128, a1: v128): v128 {
  const q = v128.load(p + qoff<W>());
  let n0 = v128.and(q, c15()), n1 = v128.and(i16x8.shr_u(q, 4), c15());
  if (hasHigh<W>()) {
    const hb = v128.load32_splat(p + qoff<W>() - 4), bit = cbits(), c = c16();
    const s0 = i8x16.relaxed_swizzle(hb, csel(0)), s1 = i8x16.relaxed_swizzle(hb, csel(1));
    n0 = v128.or(n0, v128.and(i8x16.eq(v128.and(s0, bit), bit), c));
    n1 = v128.or(n1, v128.and(i8x16.eq(v128.and(s1, bit), bit), c));
  }
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(a0, n0), i16x8.relaxed_dot_i8x16_i7x16_s(a1, n1));
}

/** Weights 16*h .. 16*h+15 of the block at p, as the int8 integers above (h is a constant). */
@inline export function wvec<W>(p: usize, h: i32): v128 {
  if (!nibbles<W>()) return v128.load(p + 2 + (<usize>h << 4));
  if (lut<W>()) {
    // indices < 16: every lowering of the relaxed swizzle agrees (one pshufb)
    const n = uvec<W>(p, h);
    if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(ckv(), n);
    return i8x16.swizzle(ckv(), n);
  }
  const u = uvec<W>(p, h);
  return woff<W>() != 0 ? i8x16.sub(u, i8x16.splat(<i8>woff<W>())) : u;
}
