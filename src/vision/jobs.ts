// Image encoding as the chat layer sees it: bytes in, the tower's rows out, one image at a time on
// the thread that holds the weights (the engine thread when serving). An encode is one long
// synchronous job (the whole tower), so images wait their turn in a queue of bounded length, and
// each starts after a turn of the event loop: forward passes of running generations, and (in
// process) other requests, get the thread between two images.
import { createHash } from 'node:crypto';
import type { CausalLM } from '../models/model.js';
import { decodeImageAsync } from './image/decode.js';
import type { ImageEmbedding, VisionEncoder } from './types.js';

/** What a chat model offers for images (ChatModel.vision). */
export interface ChatVision {
  /** the tower's model_type (VisionEncoder.kind) */
  readonly kind: string;
  /** decode image bytes and run the tower; `hash` becomes ImageEmbedding.hash. ImageError for bad bytes. */
  encode(bytes: Uint8Array, hash: string, signal?: AbortSignal): Promise<ImageEmbedding>;
}

/** hex SHA-256 of an image's bytes: ImageEmbedding.hash, the prefix cache's key for its rows. */
export const imageHash = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Too many images already wait: a 503 for the server. */
export class ImageQueueFull extends Error {
  constructor(n: number) {
    super(`${n} images are already waiting to be encoded; try again shortly`);
    this.name = 'ImageQueueFull';
  }
}

/** The model's vision tower, where the loader put one (CausalLM.vision). */
export const visionOf = (model: CausalLM): VisionEncoder | undefined => (model as CausalLM & { vision?: VisionEncoder }).vision;

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A tower's encodes, one at a time, at most `maxQueued` waiting. */
export class ImageQueue implements ChatVision {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(
    private readonly encoder: VisionEncoder,
    readonly maxQueued = 64,
  ) {}

  get kind(): string {
    return this.encoder.kind;
  }

  /** images queued or being encoded */
  get load(): number {
    return this.waiting;
  }

  encode(bytes: Uint8Array, hash: string, signal?: AbortSignal): Promise<ImageEmbedding> {
    if (this.waiting >= this.maxQueued) return Promise.reject(new ImageQueueFull(this.waiting));
    this.waiting++;
    const job = this.tail
      .then(turn)
      .then(() => {
        signal?.throwIfAborted(); // the client left while it waited
        return decodeImageAsync(bytes); // async for lossy WebP (libwebp in WebAssembly)
      })
      .then((img) => this.encoder.encode(img, hash))
      .finally(() => this.waiting--);
    this.tail = job.catch(() => {});
    return job;
  }
}
