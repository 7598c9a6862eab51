// Where a prompt's tokens sit for M-RoPE when it holds images (VISION.md section 6, = HF's
// get_rope_index for still images and llama.cpp's mtmd positions): a text token at sequence
// index p is at (p', p', p') with p' = p + the shift of the images before it; an image whose
// nx * ny rows start at index s (its first row at p0 = s + shift) puts row r, column c at
// (p0, p0 + r, p0 + c); the token after it is at p0 + max(nx, ny), not p0 + nx * ny, so every
// image shifts what follows by max(nx, ny) - nx * ny. The cache slot (BatchEntry.pos) stays p.
import { fail } from '../errors.js';
import type { BatchEntry } from '../models/kv_cache.js';
import type { PromptImage } from './types.js';

export interface MropePlan {
  /** (t, h, w) of every prompt position, [P, 3] row-major */
  pos: Int32Array;
  /** what to add to a sequence index from P on (generated tokens) to get its M-RoPE position */
  delta: number;
}

/** The M-RoPE positions of a prompt of `length` tokens holding `images` (sorted by start, not overlapping: checkImages). */
export function mropePositions(length: number, images: readonly PromptImage[]): MropePlan {
  const pos = new Int32Array(length * 3);
  let delta = 0,
    p = 0;
  const text = (end: number) => {
    for (; p < end; p++) pos.fill(p + delta, p * 3, p * 3 + 3);
  };
  for (const { start, image } of images) {
    text(start);
    const { nx, ny } = image,
      p0 = start + delta;
    for (let r = 0; r < ny; r++)
      for (let c = 0; c < nx; c++, p++) {
        pos[p * 3] = p0;
        pos[p * 3 + 1] = p0 + r;
        pos[p * 3 + 2] = p0 + c;
      }
    delta += Math.max(nx, ny) - nx * ny;
  }
  text(length);
  return { pos, delta };
}

/** What an entry at sequence index `p` carries with images: its M-RoPE position, and its embedding
 * when it is one of an image's rows. */
export function imageFields(plan: MropePlan, images: readonly PromptImage[], p: number): Pick<BatchEntry, 'mpos' | 'embd'> {
  if (p * 3 >= plan.pos.length) return { mpos: [p + plan.delta, p + plan.delta, p + plan.delta] };
  const mpos = [plan.pos[p * 3]!, plan.pos[p * 3 + 1]!, plan.pos[p * 3 + 2]!] as const;
  for (const { start, image } of images) {
    const k = p - start;
    if (k >= 0 && k < image.nx * image.ny) return { mpos, embd: image.rows.subarray(k * image.dim, (k + 1) * image.dim) };
  }
  return { mpos };
}

/**
 * The images of a request, checked against its prompt and model: each inside the prompt, in order
 * and apart, over a run of one repeated token (the expanded `<|image_pad|>`), with rows as wide as
 * the model's hidden size.
 */
export function checkImages(images: readonly PromptImage[], prompt: readonly number[], hidden: number, hasMrope: boolean): void {
  if (images.length && !hasMrope) fail('this model takes no images: it has no M-RoPE sections (a Qwen2.5-VL or Qwen3.5 language model has them)');
  let end = 0;
  images.forEach(({ start, image }, i) => {
    const what = `image ${i}`;
    const { nx, ny, dim, rows } = image;
    if (!Number.isSafeInteger(nx) || !Number.isSafeInteger(ny) || nx < 1 || ny < 1) fail(`${what}: a grid of ${nx} x ${ny} merged tokens`);
    if (dim !== hidden) fail(`${what}: rows of ${dim} values, but the model's hidden_size is ${hidden} (is the mmproj for another model?)`);
    if (rows.length !== nx * ny * dim) fail(`${what}: ${rows.length} values for ${nx} x ${ny} rows of ${dim}`);
    const n = nx * ny;
    if (!Number.isSafeInteger(start) || start < end) fail(`${what} starts at ${start}, ${i ? `inside or before image ${i - 1}` : 'before the prompt'}`);
    if (start + n > prompt.length) fail(`${what}: ${n} rows from position ${start} run past the prompt's ${prompt.length} tokens`);
    const pad = prompt[start]!;
    for (let k = 1; k < n; k++)
      if (prompt[start + k] !== pad) fail(`${what}: prompt position ${start + k} holds token ${prompt[start + k]}, not the image's pad ${pad} (each image needs nx * ny = ${n} <|image_pad|> tokens)`);
    // a pad just outside the run would get the token's own embedding: the run must be exactly n long
    const next = images[i + 1]?.start;
    if ((start > end && prompt[start - 1] === pad) || (start + n !== next && prompt[start + n] === pad))
      fail(`${what}: the run of pad tokens (${pad}) around positions ${start}..${start + n - 1} is longer than its ${nx} x ${ny} = ${n} rows`);
    end = start + n;
  });
}
