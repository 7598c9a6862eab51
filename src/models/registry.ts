// model_type -> architecture module (one file per HF model_type).
import type { ModelType } from './config.js';
import type { Architecture } from './model.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';
import { qwen3_5 } from './qwen3_5.js';

export const ARCHITECTURES: Record<ModelType, Architecture> = { qwen2, qwen3, qwen3_5_text: qwen3_5 };
