// model_type -> architecture module (one file per HF model_type).
import type { ModelType } from './config.js';
import type { Architecture } from './model.js';
import { qwen2 } from './qwen2.js';
import { qwen2_moe } from './qwen2_moe.js';
import { qwen2_5_vl } from './qwen2_5_vl.js';
import { qwen3 } from './qwen3.js';
import { qwen3_moe } from './qwen3_moe.js';
import { qwen3_5 } from './qwen3_5.js';
import { qwen3_5_moe } from './qwen3_5_moe.js';
import { qwen3_next } from './qwen3_next.js';

export const ARCHITECTURES: Record<ModelType, Architecture> = {
  qwen2,
  qwen3,
  qwen3_5_text: qwen3_5,
  qwen2_moe,
  qwen3_moe,
  qwen3_5_moe_text: qwen3_5_moe,
  qwen3_next,
  qwen2_5_vl,
  qwen2_vl: qwen2_5_vl, // the same language model; the towers differ (src/vision)
};
