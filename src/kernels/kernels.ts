// Entry point of the kernel module (compiled twice: plain SIMD and relaxed SIMD, see package.json).
// Parallel kernels take (part, parts, ...) and do their share; src/backend/wasm.ts dispatches them.
export { init_tables } from './common';
export { quant_q8, mm_q8_0 } from './q8';
export { q8_scratch_bytes, u8_dot_probe } from './q8_tile';
export { dequant_row, embed_rows } from './dequant';
export { mm_rows, mv_bf16, mv_f16, scale_f32 } from './float';
export { rms_norm, rope, rope_table, silu_mul, add, add_bias, attention, attention_scratch_floats, attention_tile, copy_f32, f16_special } from './ops';
export { sigmoid_mul, ssm_conv } from './ssm';
export { kv_store } from './kv';
export { delta_net, delta_scratch_floats } from './deltanet';
export { quant_q8k, mm_kq } from './kq';
export { kq_scratch_bytes } from './kq_tile';

/** 1 in the relaxed-SIMD build. */
export function relaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
export { quant_weights } from './quant_w';
export { matmul_t, mmt_chunks, mmt_scratch_bytes } from './grad';
export { attention_back, attn_back_scratch_floats, silu_mul_back } from './grad_ops';
export { gelu, layer_norm } from './vision';
