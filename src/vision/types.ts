// The shapes the vision pieces agree on: a decoded image, the tower that turns it into rows of
// the language model's hidden size, and where those rows sit in a prompt. The tower's math lives
// in the model files of this folder, image decoding in image/, and the language model takes the
// rows through BatchEntry.embd with M-RoPE positions (BatchEntry.mpos).

/** A decoded image: RGB bytes, row-major, 3 bytes per pixel (alpha dropped, grey expanded). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array; // [height, width, 3]
}

/** What the tower's preprocessing makes of an image: the resized, padded, normalised pixels. */
export interface Pixels {
  width: number; // multiple of patch_size * spatial_merge_size
  height: number;
  data: Float32Array; // [3, height, width], planar, (x / 255 - mean[c]) / std[c]
}

/** An image as the language model sees it: nx * ny rows of projection_dim (= LM hidden_size). */
export interface ImageEmbedding {
  rows: Float32Array; // [ny * nx, dim]: merged tokens in raster order (row r, column c at r * nx + c)
  nx: number; // merged tokens across
  ny: number; // merged tokens down
  dim: number;
  /** hex SHA-256 of the image's encoded bytes (or of its RGB pixels when it came decoded): the prefix cache's key */
  hash: string;
}

/** A vision tower with its merger (mmproj): Qwen2.5-VL's or Qwen3.5's (Qwen3-VL without DeepStack). */
export interface VisionEncoder {
  /** the HF model_type of the tower's model: 'qwen2_5_vl', 'qwen2_vl', 'qwen3_5', 'qwen3_5_moe' */
  readonly kind: string;
  /** width of the rows it makes: must equal the language model's hidden_size */
  readonly projectionDim: number;
  /** the merged-token grid an image of this size becomes (after the smart resize) */
  grid(width: number, height: number): { nx: number; ny: number };
  /** resize / pad / normalise as the reference does (llama.cpp's mtmd dyn_size preprocessing) */
  preprocess(img: RgbImage): Pixels;
  /** the image's rows, [ny * nx, projectionDim] (hash: see ImageEmbedding) */
  encode(img: RgbImage, hash: string): ImageEmbedding;
}

/**
 * An image inside a prompt: the prompt holds nx * ny `<|image_pad|>` ids from `start` (as the HF
 * processor expands them, between `<|vision_start|>` and `<|vision_end|>`), whose embeddings are
 * replaced by the image's rows.
 */
export interface PromptImage {
  start: number;
  image: ImageEmbedding;
}
