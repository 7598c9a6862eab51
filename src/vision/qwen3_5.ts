// Qwen3.5's vision tower (HF model_type "qwen3_5" / "qwen3_5_moe"; llama.cpp projector
// qwen3vl_merger, clip_graph_qwen3vl): Qwen3-VL's tower without DeepStack. Patch embedding with a
// bias plus a learned G x G position grid resized (bilinear, aligned corners) to the patch grid;
// blocks with LayerNorm, fused qkv (split at load), GELU-tanh MLP, 2-D RoPE attention over all
// tokens; then the 2x2 merger with LayerNorm.
import type { Backend } from '../backend/backend.js';
import { Tower, addPositionGrid, checkPixels, patchEmbed, visionBlock } from './blocks.js';
import type { VisionWeights } from './mmproj.js';
import type { Pixels } from './types.js';

export class Qwen35VisionTower extends Tower {
  constructor(be: Backend, w: VisionWeights) {
    super(be, w);
    if (!w.posEmbd || !w.patchBias) throw new Error(`a ${w.config.projector_type} tower without its position grid or patch bias`);
  }

  encodePixels(px: Pixels): Float32Array {
    const be = this.backend,
      W = this.weights,
      c = W.config,
      cb = this.cb;
    const order = checkPixels(c, px); // tokens in 2x2 merge-block order
    const N = order.pos.length / 2,
      n = c.hidden_size;
    const x0 = patchEmbed(be, px, order, W); // [N, n], with the patch bias
    cb('patch_bias', -1, x0, [N, n]);
    addPositionGrid(x0, W.posEmbd!, order, n);
    cb('inp_pos_emb', -1, x0, [N, n]);
    let x = x0;
    W.layers.forEach((L, il) => {
      x = visionBlock(be, x, L, c, order, false, il, cb); // [N, n]
    });
    return this.mergeRows(x, order); // [ny*nx, proj], raster order
  }
}
