// A vision tower's configuration, under the names of HF's `vision_config` (and
// preprocessor_config.json), read from either an mmproj GGUF's clip.* keys (llama.cpp's
// converter, VISION.md section 2) or an HF model folder, and checked once here so that the tower
// code can trust it. Which towers: Qwen2-VL, Qwen2.5-VL and Qwen3.5 (Qwen3-VL's tower without
// DeepStack); anything else is refused by name.
import { fail, quote } from '../errors.js';
import type { GgufValue } from '../formats/gguf.js';
import { LLAMA_MAX_TOKENS, LLAMA_MIN_TOKENS } from './image/preprocess.js';

/** llama.cpp's projector names (clip.projector_type) for the towers qwen.ts runs. */
export type ProjectorType = 'qwen2vl_merger' | 'qwen2.5vl_merger' | 'qwen3vl_merger';

export interface VisionConfig {
  /** the HF model_type of the model the tower belongs to: qwen2_vl, qwen2_5_vl, qwen3_5, qwen3_5_moe (an mmproj: one of the first three) */
  model_type: string;
  projector_type: ProjectorType;
  /** the tower's width n (HF hidden_size; Qwen2-VL's embed_dim; GGUF clip.vision.embedding_length) */
  hidden_size: number;
  intermediate_size: number;
  depth: number;
  num_heads: number;
  patch_size: number;
  spatial_merge_size: number;
  temporal_patch_size: number;
  /** width of the rows the merger makes: the language model's hidden size (GGUF clip.vision.projection_dim) */
  out_hidden_size: number;
  /** MLP activation: SwiGLU with silu (2.5), fc1 -> gelu_pytorch_tanh -> fc2 (3.x), fc1 -> quick_gelu -> fc2 (Qwen2-VL) */
  hidden_act: 'silu' | 'gelu_pytorch_tanh' | 'quick_gelu';
  /** RMSNorm (2.5) or LayerNorm with bias (Qwen2-VL, 3.x), in the blocks and the merger */
  norm: 'rms' | 'layer';
  layer_norm_eps: number;
  /** Qwen2.5-VL: attention windows of this many pixels (112: 4x4 merged tokens at patch 14) and the
   * layers that attend to every token; other towers: 0 and every layer */
  window_size: number;
  fullatt_block_indexes: number[];
  /** Qwen3-VL / 3.5: the learned position grid's G*G rows (0: none) */
  num_position_embeddings: number;
  image_mean: [number, number, number];
  image_std: [number, number, number];
  /** smart-resize bounds in pixels (llama.cpp: 8 and 4096 merged tokens' worth) */
  min_pixels: number;
  max_pixels: number;
}

const PROJECTORS: Record<ProjectorType, { model_type: string; hidden_act: VisionConfig['hidden_act']; norm: VisionConfig['norm'] }> = {
  qwen2vl_merger: { model_type: 'qwen2_vl', hidden_act: 'quick_gelu', norm: 'layer' },
  'qwen2.5vl_merger': { model_type: 'qwen2_5_vl', hidden_act: 'silu', norm: 'rms' },
  // an mmproj cannot tell Qwen3.5's tower from Qwen3-VL's but by DeepStack, which is refused: so Qwen3.5's
  qwen3vl_merger: { model_type: 'qwen3_5', hidden_act: 'gelu_pytorch_tanh', norm: 'layer' },
};

// ---- from an mmproj GGUF ----

/** The tower config of an mmproj GGUF's metadata (`where`: the file, for messages). */
export function visionConfigFromGguf(md: ReadonlyMap<string, GgufValue>, where: string): VisionConfig {
  const arch = md.get('general.architecture');
  if (arch !== 'clip') fail(`${where}: general.architecture is ${quote(arch)}, not "clip": not an mmproj (vision projector) file`);
  if (md.get('clip.has_vision_encoder') === false) fail(`${where}: clip.has_vision_encoder is false: this mmproj has no vision tower`);
  const proj = md.get('clip.projector_type') ?? md.get('clip.vision.projector_type');
  if (typeof proj !== 'string' || !(proj in PROJECTORS)) {
    fail(`${where}: clip.projector_type ${quote(proj)} is not one qwen.ts runs (it runs ${Object.keys(PROJECTORS).join(', ')}: the Qwen2-VL, Qwen2.5-VL and Qwen3.5 vision towers)`);
  }
  const p = PROJECTORS[proj as ProjectorType];
  const u32 = (k: string, dflt?: number): number => {
    const v = md.get(k);
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(`${where}: metadata ${k} is ${quote(v)}, expected a positive integer`);
    return v;
  };
  const f32 = (k: string): number => {
    const v = md.get(k);
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${where}: metadata ${k} is ${quote(v)}, expected a number`);
    return v;
  };
  const depth = u32('clip.vision.block_count'),
    patch = u32('clip.vision.patch_size'),
    merge = u32('clip.vision.spatial_merge_size', 2);
  // Qwen2.5-VL: full-attention layers every n_wa_pattern (HF fullatt_block_indexes, equally spaced)
  const nwa = proj === 'qwen2.5vl_merger' ? u32('clip.vision.n_wa_pattern') : 0;
  const deep = md.get('clip.vision.is_deepstack_layers');
  if (Array.isArray(deep) && deep.some((d) => d === true)) fail(`${where}: clip.vision.is_deepstack_layers marks DeepStack layers (Qwen3-VL proper): qwen.ts runs Qwen3.5's tower, which has none`);
  const f = patch * merge;
  const c: VisionConfig = {
    model_type: p.model_type,
    projector_type: proj as ProjectorType,
    hidden_size: u32('clip.vision.embedding_length'),
    intermediate_size: u32('clip.vision.feed_forward_length'),
    depth,
    num_heads: u32('clip.vision.attention.head_count'),
    patch_size: patch,
    spatial_merge_size: merge,
    temporal_patch_size: 2,
    out_hidden_size: u32('clip.vision.projection_dim'),
    hidden_act: p.hidden_act,
    norm: p.norm,
    layer_norm_eps: f32('clip.vision.attention.layer_norm_epsilon'),
    window_size: nwa ? 112 : 0, // llama.cpp fixes 112 px (clip.cpp); HF's vision_config.window_size is 112 too
    fullatt_block_indexes: nwa ? Array.from({ length: depth }, (_, i) => i).filter((i) => (i + 1) % nwa === 0) : [],
    num_position_embeddings: 0,
    image_mean: rgb(md.get('clip.vision.image_mean'), where, 'metadata clip.vision.image_mean'),
    image_std: rgb(md.get('clip.vision.image_std'), where, 'metadata clip.vision.image_std'),
    min_pixels: LLAMA_MIN_TOKENS * f * f,
    max_pixels: LLAMA_MAX_TOKENS * f * f,
  };
  return checkVisionConfig(c, where);
}

// ---- from an HF folder ----

type Json = Record<string, unknown>;

/**
 * The tower config of an HF model: config.json (`vision_config` and model_type) and, when there is
 * one, preprocessor_config.json (patch and merge sizes, mean / std, min / max pixels, which
 * Qwen2-VL-era files give as min_pixels / max_pixels and newer ones as size.shortest_edge /
 * size.longest_edge). The HF processor's bounds are used as written; llama.cpp's are 8 and 4096
 * merged tokens.
 */
export function visionConfigFromHf(config: unknown, preprocessor: unknown, where: string): VisionConfig {
  const cfg = obj(config, where, 'config.json');
  const mt = cfg.model_type;
  const kinds: Record<string, ProjectorType> = { qwen2_vl: 'qwen2vl_merger', qwen2_5_vl: 'qwen2.5vl_merger', qwen3_5: 'qwen3vl_merger', qwen3_5_moe: 'qwen3vl_merger' };
  if (typeof mt !== 'string' || !(mt in kinds)) {
    const hint = mt === 'qwen3_vl' || mt === 'qwen3_vl_moe' ? ' (Qwen3-VL proper has DeepStack layers, which qwen.ts does not run)' : '';
    fail(`${where}: model_type ${quote(mt)} has no vision tower qwen.ts runs (it runs ${Object.keys(kinds).join(', ')})${hint}`);
  }
  const proj = kinds[mt]!;
  const v = obj(cfg.vision_config, where, 'vision_config');
  const pp = preprocessor === undefined ? {} : obj(preprocessor, where, 'preprocessor_config.json');
  const int = (o: Json, k: string, what: string, dflt?: number): number => {
    const x = o[k] ?? dflt;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x <= 0) fail(`${where}: ${what}.${k} is ${quote(x)}, expected a positive integer`);
    return x;
  };
  const qwen2 = proj === 'qwen2vl_merger';
  // Qwen2-VL names the tower's width embed_dim (its hidden_size is the merger's output) and its MLP mlp_ratio
  const n = int(v, qwen2 ? 'embed_dim' : 'hidden_size', 'vision_config');
  const depth = int(v, 'depth', 'vision_config');
  const patch = int(pp, 'patch_size', 'preprocessor_config.json', int(v, 'patch_size', 'vision_config'));
  const merge = int(pp, 'merge_size', 'preprocessor_config.json', int(v, 'spatial_merge_size', 'vision_config', 2));
  const f = patch * merge;
  const size = pp.size === undefined ? {} : obj(pp.size, where, 'preprocessor_config.json size');
  const act = v.hidden_act ?? (qwen2 ? 'quick_gelu' : undefined);
  const want = PROJECTORS[proj].hidden_act;
  if (act !== want) fail(`${where}: vision_config.hidden_act is ${quote(act)}; the ${mt} tower uses ${want}`);
  const deep = v.deepstack_visual_indexes;
  if (Array.isArray(deep) && deep.length > 0) fail(`${where}: vision_config.deepstack_visual_indexes ${quote(deep)}: DeepStack (Qwen3-VL proper) is not supported; Qwen3.5's tower has none`);
  const full = proj === 'qwen2.5vl_merger' ? v.fullatt_block_indexes : [];
  if (!Array.isArray(full) || !full.every((i) => Number.isSafeInteger(i) && i >= 0 && i < depth))
    fail(`${where}: vision_config.fullatt_block_indexes is ${quote(full)}, expected layer indexes below depth ${depth}`);
  const c: VisionConfig = {
    model_type: mt,
    projector_type: proj,
    hidden_size: n,
    intermediate_size: qwen2 ? n * int(v, 'mlp_ratio', 'vision_config') : int(v, 'intermediate_size', 'vision_config'),
    depth,
    num_heads: int(v, 'num_heads', 'vision_config'),
    patch_size: patch,
    spatial_merge_size: merge,
    temporal_patch_size: int(pp, 'temporal_patch_size', 'preprocessor_config.json', int(v, 'temporal_patch_size', 'vision_config', 2)),
    out_hidden_size: qwen2 ? int(v, 'hidden_size', 'vision_config') : int(v, 'out_hidden_size', 'vision_config'),
    hidden_act: want,
    norm: PROJECTORS[proj].norm,
    layer_norm_eps: 1e-6, // HF's vision blocks and merger build their norms with eps 1e-6
    window_size: proj === 'qwen2.5vl_merger' ? int(v, 'window_size', 'vision_config') : 0,
    fullatt_block_indexes: full as number[],
    num_position_embeddings: proj === 'qwen3vl_merger' ? int(v, 'num_position_embeddings', 'vision_config') : 0,
    image_mean: rgb(pp.image_mean ?? PROJECTOR_MEAN[proj], where, 'image_mean'),
    image_std: rgb(pp.image_std ?? PROJECTOR_STD[proj], where, 'image_std'),
    min_pixels: int(pp, 'min_pixels', 'preprocessor_config.json', int(size, 'shortest_edge', 'preprocessor_config.json size', LLAMA_MIN_TOKENS * f * f)),
    max_pixels: int(pp, 'max_pixels', 'preprocessor_config.json', int(size, 'longest_edge', 'preprocessor_config.json size', LLAMA_MAX_TOKENS * f * f)),
  };
  return checkVisionConfig(c, where);
}

// the HF image processors' defaults (OpenAI CLIP's for Qwen2/2.5-VL, 0.5 for Qwen3-VL)
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073],
  CLIP_STD = [0.26862954, 0.26130258, 0.27577711];
const PROJECTOR_MEAN: Record<ProjectorType, number[]> = { qwen2vl_merger: CLIP_MEAN, 'qwen2.5vl_merger': CLIP_MEAN, qwen3vl_merger: [0.5, 0.5, 0.5] };
const PROJECTOR_STD: Record<ProjectorType, number[]> = { qwen2vl_merger: CLIP_STD, 'qwen2.5vl_merger': CLIP_STD, qwen3vl_merger: [0.5, 0.5, 0.5] };

function obj(x: unknown, where: string, what: string): Json {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(`${where}: ${what} is ${quote(x)}, expected an object`);
  return x as Json;
}

function rgb(x: unknown, where: string, what: string): [number, number, number] {
  if (!Array.isArray(x) || x.length !== 3 || !x.every((v) => typeof v === 'number' && Number.isFinite(v))) fail(`${where}: ${what} is ${quote(x)}, expected 3 numbers`);
  return x as [number, number, number];
}

/** What the tower code relies on, whichever file the config came from. */
function checkVisionConfig(c: VisionConfig, where: string): VisionConfig {
  const d = c.hidden_size / c.num_heads;
  if (!Number.isInteger(d) || d % 4 !== 0) fail(`${where}: the vision tower's width ${c.hidden_size} over ${c.num_heads} heads gives head size ${d}: the vision RoPE needs a whole multiple of 4`);
  if (c.spatial_merge_size !== 2) fail(`${where}: spatial_merge_size ${c.spatial_merge_size}: the Qwen mergers qwen.ts runs join 2x2 patches`);
  if (c.temporal_patch_size !== 2) fail(`${where}: temporal_patch_size ${c.temporal_patch_size}: the Qwen towers' patch kernel spans 2 frames`);
  if (c.window_size && c.window_size % (c.patch_size * c.spatial_merge_size) !== 0)
    fail(`${where}: window_size ${c.window_size} is not a multiple of patch_size * spatial_merge_size = ${c.patch_size * c.spatial_merge_size}`);
  if (c.num_position_embeddings && !Number.isInteger(Math.sqrt(c.num_position_embeddings))) fail(`${where}: num_position_embeddings ${c.num_position_embeddings} is not a square grid`);
  if (!(c.layer_norm_eps > 0)) fail(`${where}: layer norm epsilon ${c.layer_norm_eps} is not positive`);
  if (c.image_std.some((s) => s === 0)) fail(`${where}: image_std ${quote(c.image_std)} has a zero`);
  if (!(c.min_pixels <= c.max_pixels)) fail(`${where}: min_pixels ${c.min_pixels} is above max_pixels ${c.max_pixels}`);
  return c;
}
