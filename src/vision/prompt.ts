// Images in a chat prompt, as the official Qwen-VL processors place them: the chat template writes
// `<|vision_start|><|image_pad|><|vision_end|>` where a message has an image part ({type: 'image'}),
// the prompt is tokenised, and each `<|image_pad|>` id is then expanded to nx * ny copies (one per
// merged token of that image: Qwen2VLProcessor's `<|image_pad|>` * grid_thw.prod() / merge^2),
// whose embeddings the language model replaces with the image's rows (PromptImage).
import { fail } from '../errors.js';
import { renderChat, type RenderOptions } from '../tokenizer/chat_template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ImageEmbedding, PromptImage } from './types.js';

export const IMAGE_PAD = '<|image_pad|>';
/** what Qwen-VL templates write for an image part */
const IMAGE_MARKER = `<|vision_start|>${IMAGE_PAD}<|vision_end|>`;

type Msg = Record<string, unknown>;

// what Qwen-VL templates count as an image: {type: 'image'}, or a part with an image / image_url field
const isImagePart = (p: unknown): boolean => typeof p === 'object' && p !== null && ((p as Msg).type === 'image' || 'image' in p || 'image_url' in p);

/** How many image parts the messages hold. */
export function countImageParts(messages: readonly Msg[]): number {
  let n = 0;
  for (const m of messages) if (Array.isArray(m.content)) n += m.content.filter(isImagePart).length;
  return n;
}

function countPads(text: string): number {
  return text.split(IMAGE_PAD).length - 1;
}

/**
 * Messages with text and image parts rendered by `template`: passed through as they are to a
 * template that reads them (Qwen-VL templates place the marker themselves, as with transformers'
 * processor); a template that does not (plain ChatML, a text model's) gets each message's parts
 * joined into one string with IMAGE_MARKER for each image, as llama.cpp's server writes its media
 * marker into the text. Either way the text must hold exactly one `<|image_pad|>` per image.
 */
export function renderWithImages(template: string, opts: RenderOptions & { messages: Msg[] }): string {
  const images = countImageParts(opts.messages);
  // a template that knows images says so in its text (Qwen-VL's test `content['type'] == 'image'`);
  // one that does not would print a list as text, or fail on it
  const knowsImages = template.includes(IMAGE_PAD) || /['"]image['"]/.test(template);
  const messages = knowsImages
    ? opts.messages
    : opts.messages.map((m) => (Array.isArray(m.content) ? { ...m, content: m.content.map((p: Msg) => (isImagePart(p) ? IMAGE_MARKER : typeof p.text === 'string' ? p.text : '')).join('') } : m));
  const text = renderChat(template, { ...opts, messages });
  const n = countPads(text);
  if (n !== images)
    fail(
      `the prompt holds ${n} ${IMAGE_PAD} markers for ${images} image${images === 1 ? '' : 's'}: message text may not contain ${IMAGE_PAD} when images are sent, and the chat template must place each image`,
    );
  return text;
}

/**
 * Token ids with each `<|image_pad|>` id expanded to its image's nx * ny pads (images in prompt
 * order), and where each image's rows start.
 */
export function expandImagePads(tok: Tokenizer, ids: readonly number[], images: readonly ImageEmbedding[]): { ids: number[]; images: PromptImage[] } {
  const pad = tok.tokenToId(IMAGE_PAD);
  if (pad === undefined) fail(`the tokenizer has no ${IMAGE_PAD} token, so it cannot place images in a prompt`);
  const n = ids.reduce((s, id) => s + (id === pad ? 1 : 0), 0);
  if (n !== images.length) fail(`the prompt holds ${n} ${IMAGE_PAD} tokens for ${images.length} image${images.length === 1 ? '' : 's'}`);
  const out: number[] = [];
  const placed: PromptImage[] = [];
  for (const id of ids) {
    if (id !== pad) {
      out.push(id);
      continue;
    }
    const image = images[placed.length]!;
    placed.push({ start: out.length, image });
    for (let k = image.nx * image.ny; k > 0; k--) out.push(pad);
  }
  return { ids: out, images: placed };
}
