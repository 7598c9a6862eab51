// Byte-level helpers: GPT-2's bytes_to_unicode table and UTF-8 encoding into a reusable buffer.
// Byte-level BPE vocabularies spell every token as a string of "byte characters": each UTF-8 byte
// is shown as one printable code point, so that the vocabulary file is valid text.

/** BYTE_TO_CHAR[b] = the code point GPT-2 uses to spell byte b. */
export const BYTE_TO_CHAR: Uint16Array = (() => {
  const out = new Uint16Array(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = printable(b) ? b : 256 + n++;
  return out;
})();

/** CHAR_TO_BYTE[c] = byte for byte-character c (c < 324), or -1. */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const out = new Int16Array(324).fill(-1);
  for (let b = 0; b < 256; b++) out[BYTE_TO_CHAR[b]!] = b;
  return out;
})();

/** The byte-level spelling of some bytes (used for vocabulary lookups of whole words). */
export function bytesToByteChars(bytes: Uint8Array, n = bytes.length): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(BYTE_TO_CHAR[bytes[i]!]!);
  return s;
}

/**
 * The bytes a token string stands for, as Hugging Face's ByteLevel decoder computes them: every
 * char mapped back through the byte table; if any char is not a byte-character (an added token
 * such as "hello world"), the token's own UTF-8 bytes instead.
 */
export function byteCharsToBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < 324 ? CHAR_TO_BYTE[c]! : -1;
    if (b < 0) return utf8.encode(token);
    out[i] = b;
  }
  return out;
}

const utf8 = new TextEncoder();

/**
 * UTF-8 encode `s` into `buf` (grown as needed) and return [buf, length]. Lone surrogates become
 * U+FFFD, as TextEncoder does (a Rust string, which Hugging Face works on, cannot hold them).
 */
export function encodeUtf8(s: string, buf: Uint8Array): [Uint8Array, number] {
  if (buf.length < s.length * 3) buf = new Uint8Array(s.length * 3 + 16);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[n++] = c;
    } else if (c < 0x800) {
      buf[n++] = 0xc0 | (c >> 6);
      buf[n++] = 0x80 | (c & 63);
    } else {
      if (c >= 0xd800 && c < 0xe000) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          buf[n++] = 0xf0 | (c >> 18);
          buf[n++] = 0x80 | ((c >> 12) & 63);
          buf[n++] = 0x80 | ((c >> 6) & 63);
          buf[n++] = 0x80 | (c & 63);
          continue;
        }
        c = 0xfffd;
      }
      buf[n++] = 0xe0 | (c >> 12);
      buf[n++] = 0x80 | ((c >> 6) & 63);
      buf[n++] = 0x80 | (c & 63);
    }
  }
  return [buf, n];
}
