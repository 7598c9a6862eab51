// `qwen-ts logits --image FILE`: the one `<|image_pad|>` id in --tokens becomes the image's nx * ny
// pads (as the HF processor expands it), whose embeddings are the tower's rows, and every position
// gets its M-RoPE (t, h, w) (src/vision/positions.ts): the batch entries of that prompt.
import * as path from 'node:path';
import { fail } from '../errors.js';
import type { BatchEntry } from '../models/kv_cache.js';
import type { CausalLM } from '../models/model.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { ImageError } from '../vision/image/common.js';
import { decodeImageAsync } from '../vision/image/decode.js';
import { imageHash } from '../vision/jobs.js';
import { readOptionFile } from './resolve.js';
import { checkImages, imageFields, mropePositions } from '../vision/positions.js';
import { expandImagePads, IMAGE_PAD } from '../vision/prompt.js';
import type { RgbImage } from '../vision/types.js';

/** The prompt `ids` with the image at `file` in place of its one pad, as batch entries (logits where `wanted`). */
export async function imagePromptEntries(model: CausalLM, modelPath: string, file: string, ids: readonly number[], wanted: (pos: number, n: number) => boolean): Promise<BatchEntry[]> {
  const c = model.config;
  if (!c.mrope_section) fail(`--image: this ${c.model_type} model is a text model (no M-RoPE sections), it takes no images`);
  if (!model.vision) fail(`--image: no vision tower for this model; give its mmproj GGUF with --mmproj (none was found beside ${path.basename(modelPath)})`);
  const tok = loadTokenizer(modelPath);
  const pad = tok.tokenToId(IMAGE_PAD);
  if (pad === undefined) fail(`--image: the model's tokenizer has no ${IMAGE_PAD} token to mark the image with`);
  const n = ids.filter((t) => t === pad).length;
  if (n !== 1) fail(`--tokens holds ${n === 0 ? 'no' : n} ${IMAGE_PAD} id${n === 1 ? '' : 's'} (${pad}); put exactly one where the image goes (--image takes one image)`);
  const bytes = readOptionFile('--image', file);
  let img: RgbImage;
  try {
    img = await decodeImageAsync(bytes);
  } catch (e) {
    // a file that is not an image, or a broken one: a one-line error, as run --image gives
    if (e instanceof ImageError) fail(`--image ${file}: ${e.message}`);
    throw e;
  }
  const emb = model.vision.encode(img, imageHash(bytes));
  const { ids: full, images } = expandImagePads(tok, ids, [emb]);
  checkImages(images, full, c.hidden_size, true);
  const plan = mropePositions(full.length, images);
  return full.map((token, pos) => ({ token, pos, seq: 0, logits: wanted(pos, full.length), ...imageFields(plan, images, pos) }));
}
