// A vision-language model double for server and page tests: a scripted language model with M-RoPE
// sections that answers `pads=N` (the <|image_pad|> tokens in its prompt) and records the image rows
// its forward passes receive, a stand-in tower (rows from the decoded pixels; the real towers are
// tested against llama.cpp in tower*.test.ts), and a PNG writer for test images of any size.
import { deflateSync } from 'node:zlib';
import type { CausalLM } from '../../src/models/model.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import type { RgbImage, VisionEncoder } from '../../src/vision/types.js';
import { chatModelDir } from '../helpers.js';
import { scriptedModel } from '../server/scripted_model.js';

export const tok = loadTokenizer(chatModelDir());
const PAD = '<|image_pad|>';
export const base = scriptedModel(tok, (prompt) => `pads=${prompt.split(PAD).length - 1}`);
const D = base.config.hidden_size;
/** image rows the forward passes received (first value of each) */
export const seenRows: number[] = [];
export const vl: CausalLM = {
  ...base,
  config: { ...base.config, mrope_section: [2, 1, 1] },
  forward: (b, c) => {
    for (const e of b) if (e.embd) seenRows.push(e.embd[0]!);
    return base.forward(b, c);
  },
};

/** A stand-in tower: a 28-pixel merged-token grid, row k's values = the image's first red byte / 255 + k. */
export function fakeTower(delayMs = 0): VisionEncoder {
  const grid = (w: number, h: number) => ({ nx: Math.max(1, Math.round(w / 28)), ny: Math.max(1, Math.round(h / 28)) });
  return {
    kind: 'qwen2_5_vl',
    projectionDim: D,
    grid,
    preprocess: () => {
      throw new Error('not used');
    },
    encode(img: RgbImage, hash: string) {
      const until = Date.now() + delayMs;
      while (Date.now() < until); // an encode holds its thread, as the real tower does
      const { nx, ny } = grid(img.width, img.height);
      const rows = new Float32Array(nx * ny * D);
      for (let k = 0; k < nx * ny; k++) rows.fill(img.data[0]! / 255 + k, k * D, (k + 1) * D);
      return { rows, nx, ny, dim: D, hash };
    },
  };
}

// PNG writer (RGB, 8 bits): enough to make test images of any size and colour
const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function chunk(type: string, data: Buffer): Buffer {
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  let c = 0xffffffff;
  for (const b of td) c = CRC[(c ^ b) & 0xff]! ^ (c >>> 8);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return Buffer.concat([len, td, crc]);
}
export function png(w: number, h: number, red: number, headerOnly = false): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (headerOnly) return Buffer.concat([sig, chunk('IHDR', ihdr)]);
  const raw = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([red, x & 255, y & 255], y * (1 + 3 * w) + 1 + 3 * x);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
export const dataUrl = (b: Buffer) => `data:image/png;base64,${b.toString('base64')}`;
export const A = png(56, 84, 51); // 2 x 3 merged tokens, rows 0.2 + k
export const B = png(56, 56, 102); // 2 x 2, rows 0.4 + k
