// The vision fixtures (test/fixtures/vision, see its PROVENANCE.md): tiny Qwen2.5-VL / Qwen3.5
// language model + mmproj GGUF pairs, their HF copies, test images and llama.cpp's outputs for a
// chat prompt with one image. Gzip'd files are unpacked once into a shared temp folder.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { FIXTURES } from '../helpers.js';

export const VISION_FIXTURES = path.join(FIXTURES, 'vision');
export const VISION_IMAGES = path.join(VISION_FIXTURES, 'images');

export type VisionPreset = 'tiny-qwen25vl' | 'tiny-qwen35vl';
export type VisionType = 'f32' | 'q8_0';
export const VISION_PRESETS: readonly VisionPreset[] = ['tiny-qwen25vl', 'tiny-qwen35vl'];

/** llama.cpp's reference outputs for `prompt` with one image (mtmd_oracle, see PROVENANCE.md). */
export interface VisionOracle {
  preset: VisionPreset;
  type: VisionType;
  source: string;
  /** the prompt as given to libmtmd: `marker` stands where the image goes */
  prompt: string;
  marker: string;
  n_vocab: number;
  /** one entry per decoder position: a token id, or -1 for an image embedding row */
  prompt_tokens: number[];
  /** each token's text (null for image rows) */
  pieces: (string | null)[];
  image: {
    /** file name under test/fixtures/vision/images */
    file: string;
    /** size as decoded (before the smart resize) */
    width: number;
    height: number;
    /** merged-token grid: nx columns, ny rows; rows of embd are raster order (r * nx + c) */
    nx: number;
    ny: number;
    n_tokens: number;
    /** positions the image chunk advances: max(nx, ny) */
    n_pos: number;
    /** index of the first image row in prompt_tokens */
    start: number;
    dim: number;
    /** the image rows, row-major [n_tokens * dim] */
    embd: number[];
  };
  /** M-RoPE position [t, h, w, e] of every prompt entry */
  positions: [number, number, number, number][];
  /** full-vocabulary logits after each prompt entry; null for image rows (llama.cpp outputs none there) */
  logits: (number[] | null)[];
  /** first position after the prompt */
  n_past: number;
  /** greedy continuation, token s decoded at position n_past + s; steps[s].logits are the logits it was chosen from */
  greedy: {
    tokens: number[];
    pieces: string[];
    steps: { pos: number; argmax: number; top: { id: number; logit: number; piece: string }[]; logits?: number[] }[];
  };
}

const TMP_ROOT = path.join(os.tmpdir(), `qwen-ts-fixtures-${process.getuid?.() ?? 0}`, 'vision');

/** Write `src` (gunzipped if it ends in .gz) to `dst` unless there already; atomic rename, so parallel test processes can share it. */
function unpack(src: string, dst: string): void {
  if (fs.existsSync(dst)) return;
  const raw = fs.readFileSync(src);
  const tmp = `${dst}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, src.endsWith('.gz') ? zlib.gunzipSync(raw) : raw);
  fs.renameSync(tmp, dst);
}

/** Path of a vision fixture file (relative to test/fixtures/vision); one stored as `rel.gz` is unpacked once into a temp folder keyed by its size. */
export function visionFile(rel: string): string {
  const src = path.join(VISION_FIXTURES, rel);
  if (fs.existsSync(src)) return src;
  if (!fs.existsSync(`${src}.gz`)) throw new Error(`vision fixture ${rel} not found (nor ${rel}.gz) under ${VISION_FIXTURES}`);
  const dir = path.join(TMP_ROOT, `${path.dirname(rel).replaceAll('/', '_')}-${fs.statSync(`${src}.gz`).size}`);
  fs.mkdirSync(dir, { recursive: true });
  const dst = path.join(dir, path.basename(rel));
  unpack(`${src}.gz`, dst);
  return dst;
}

/** The language model and mmproj GGUF files of a preset. */
export function visionGguf(preset: VisionPreset, type: VisionType): { model: string; mmproj: string } {
  return { model: visionFile(`${preset}/model-${type}.gguf`), mmproj: visionFile(`${preset}/mmproj-${type}.gguf`) };
}

/** The HF copy of a preset's F32 weights (config.json, model.safetensors, tokenizer, preprocessor), gzip'd members unpacked. */
export function visionHfDir(preset: VisionPreset): string {
  const src = path.join(VISION_FIXTURES, preset, 'hf');
  const entries = fs.readdirSync(src).sort();
  if (!entries.some((e) => e.endsWith('.gz'))) return src;
  const stamp = entries.map((e) => `${e}:${fs.statSync(path.join(src, e)).size}`).join(',');
  let h = 0;
  for (let i = 0; i < stamp.length; i++) h = (Math.imul(h, 31) + stamp.charCodeAt(i)) | 0;
  const dst = path.join(TMP_ROOT, `${preset}-hf-${(h >>> 0).toString(16)}`);
  fs.mkdirSync(dst, { recursive: true });
  for (const e of entries) unpack(path.join(src, e), path.join(dst, e.replace(/\.gz$/, '')));
  return dst;
}

/** Names (`168x140`, `168x140-jpg`, ...) of the images a preset has oracle outputs for. */
export function oracleImages(preset: VisionPreset, type: VisionType = 'f32'): string[] {
  const pre = `${preset}-${type}-`;
  return fs
    .readdirSync(path.join(VISION_FIXTURES, 'oracle'))
    .filter((f) => f.startsWith(pre) && f.endsWith('.json.gz'))
    .map((f) => f.slice(pre.length, -'.json.gz'.length))
    .sort();
}

/** llama.cpp's outputs for a preset, weight type and image name (see oracleImages). */
export function loadOracle(preset: VisionPreset, type: VisionType, image: string): VisionOracle {
  const file = path.join(VISION_FIXTURES, 'oracle', `${preset}-${type}-${image}.json.gz`);
  return JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8')) as VisionOracle;
}

/** An oracle's image rows as one Float32Array [n_tokens * dim]. */
export function oracleEmbd(o: VisionOracle): Float32Array {
  return Float32Array.from(o.image.embd);
}

/** Path of a test image (`img-168x140.png`, `img-160x96.jpg`, ...). */
export function visionImage(file: string): string {
  return path.join(VISION_IMAGES, file);
}

/** The image decoders' fixtures (test/fixtures/vision/images/decode) and their expected.json. */
const DECODE_DIR = path.join(VISION_IMAGES, 'decode');

/** expected.json's decodes: size, sha256 of the RGB stb_image (or dwebp) gives, and for WebP whether it is lossless. */
export interface DecodeExpected {
  decode: Record<string, { width: number; height: number; sha256?: string; rgb_gz_base64?: string; lossless?: boolean }>;
}

export const decodeExpected = (): DecodeExpected => JSON.parse(fs.readFileSync(path.join(DECODE_DIR, 'expected.json'), 'utf8'));

/** A decoder fixture's bytes. */
export const readDecodeFixture = (name: string): Uint8Array => new Uint8Array(fs.readFileSync(path.join(DECODE_DIR, name)));

/** A test image's bytes (visionImage's file). */
export const readVisionImage = (file: string): Uint8Array => new Uint8Array(fs.readFileSync(visionImage(file)));

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Reference RGB pixels (row-major, 3 bytes a pixel) of a lossy image: `img-W x H.jpg` as stb_image
 * (llama.cpp's loader) decodes it, or `img-160x96-lossy.webp` as libwebp's dwebp decodes it.
 */
export function referencePixels(file: string): Uint8Array {
  const ref = file.endsWith('.jpg') ? `${file}.stb.rgb.gz` : `${file}.dwebp.rgb.gz`;
  return new Uint8Array(zlib.gunzipSync(fs.readFileSync(path.join(VISION_IMAGES, ref))));
}
