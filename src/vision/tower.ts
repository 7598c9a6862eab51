// Opening a vision tower: an mmproj GGUF or an HF folder, into the tower file of its model type.
import type { Backend } from '../backend/backend.js';
import type { Tower } from './blocks.js';
import { loadVisionWeights } from './mmproj.js';
import { Qwen25VisionTower } from './qwen2_5_vl.js';
import { Qwen35VisionTower } from './qwen3_5.js';

/** Load the tower at `p` (mmproj GGUF or HF folder); `lmHidden`: the language model's hidden size, which its rows must have. */
export function loadVisionTower(p: string, be: Backend, lmHidden?: number): Tower {
  const w = loadVisionWeights(p, be, lmHidden);
  return w.config.projector_type === 'qwen3vl_merger' ? new Qwen35VisionTower(be, w) : new Qwen25VisionTower(be, w);
}
