// Qwen2.5-VL's vision tower (HF model_type "qwen2_5_vl"; llama.cpp projector qwen2.5vl_merger,
// clip_graph_qwen2vl), which also serves Qwen2-VL (qwen2vl_merger): patch embedding without a
// bias, blocks with RMSNorm (Qwen2-VL: LayerNorm), SwiGLU (Qwen2-VL: quick GELU), 2-D RoPE
// attention inside windows of 112 px (4x4 merged tokens at patch 14) except in the
// fullatt_block_indexes layers (Qwen2-VL: every layer full), then the 2x2 merger.
import type { Backend } from '../backend/backend.js';
import { Tower, checkPixels, patchEmbed, visionBlock } from './blocks.js';
import type { VisionWeights } from './mmproj.js';
import type { Pixels } from './types.js';

export class Qwen25VisionTower extends Tower {
  constructor(be: Backend, w: VisionWeights) {
    super(be, w);
    if (w.posEmbd || w.patchBias) throw new Error(`a ${w.config.projector_type} tower with Qwen3-VL's position grid or patch bias`);
  }

  encodePixels(px: Pixels): Float32Array {
    const be = this.backend,
      W = this.weights,
      c = W.config,
      cb = this.cb;
    // tokens in 2x2 merge-block order, grouped window by window (one window when there are none)
    const order = checkPixels(c, px);
    const N = order.pos.length / 2,
      n = c.hidden_size;
    let x = patchEmbed(be, px, order, W); // [N, n]
    cb('inp', -1, x, [N, n]);
    const full = new Set(c.fullatt_block_indexes);
    W.layers.forEach((L, il) => {
      x = visionBlock(be, x, L, c, order, c.window_size > 0 && !full.has(il), il, cb); // [N, n]
    });
    return this.mergeRows(x, order); // [ny*nx, proj], raster order
  }
}
