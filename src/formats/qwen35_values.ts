// Qwen3.5's HF checkpoints store two kinds of values that llama.cpp's converter rewrites for GGUF
// (../shared/design/QWEN35.md §3, §9): RMSNorm weights are zero-centred (y = x̂·(1 + w); GGUF
// stores 1 + w), except the DeltaNet's gated norm (linear_attn.norm), and the decay rate is
// A_log (GGUF: A = -exp(A_log)). Used by the loader (the model reads GGUF's convention from
// either file) and by the HF -> GGUF conversion.

const ZERO_CENTRED = /(^model\.norm|^mtp\.norm|^mtp\.pre_fc_norm_\w+|layernorm|\.q_norm|\.k_norm)\.weight$/; // (mtp.*: the MTP block's)
const A_LOG = /\.linear_attn\.A_log$/;

/** Rewrite, in place, the values of HF tensor `name` (text-model name, `model.` prefix) to GGUF's. */
export function qwen35HfToGgufValues(name: string, data: Float32Array): void {
  if (ZERO_CENTRED.test(name)) for (let i = 0; i < data.length; i++) data[i]! += 1;
  else if (A_LOG.test(name)) for (let i = 0; i < data.length; i++) data[i] = -Math.exp(data[i]!);
}
