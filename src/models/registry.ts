// model_type -> architecture module (one file per HF model_type).
import type { ModelType } from './config.js';
import type { Architecture } from './model.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';

export const ARCHITECTURES: Record<ModelType, Architecture> = { qwen2, qwen3 };
