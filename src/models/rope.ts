// The rotary frequencies a model's attention applies: plain theta^(-2j/nRot), or with YaRN
// (config_rope.ts) each pair's frequency moved between that (extrapolation) and it / factor
// (interpolation), and q and k scaled by attention_factor, as llama.cpp's rope_yarn computes them
// (ggml-cpu ops.cpp; ggml_rope_yarn_corr_dims in ggml.c). The backends' rope op takes the result.
import type { RopeFreqs } from '../backend/backend.js';
import type { QwenConfig } from './config.js';
import type { YarnScaling } from './config_rope.js';

/**
 * YaRN's per-pair frequencies for nRot rotated dims of base `theta`. Pair j has wavelength
 * 2pi / theta^(-2j/nRot); pairs that turn more than beta_fast times over the original context
 * keep their frequency, those that turn fewer than beta_slow times are divided by factor, and a
 * linear ramp over the dims between the two mixes them (transformers' _compute_yarn_parameters
 * gives the same, mixing inverse frequencies where llama.cpp mixes angles: the mix is linear).
 */
export function yarnFreqs(y: YarnScaling, theta: number, nRot: number): RopeFreqs {
  // the dim (of nRot) whose pair turns `rot` times over the original context
  const corrDim = (rot: number) => (nRot * Math.log(y.original_max_position_embeddings / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = corrDim(y.beta_fast),
    high = corrDim(y.beta_slow);
  if (y.truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(0, low);
  high = Math.min(nRot - 1, high);
  const inv = new Float64Array(nRot / 2);
  for (let j = 0; j < nRot / 2; j++) {
    const extrap = 1 - Math.min(1, Math.max(0, (j - low) / Math.max(0.001, high - low))); // 1: keep
    inv[j] = Math.pow(theta, (-2 * j) / nRot) * (extrap + (1 - extrap) / y.factor);
  }
  return { inv, mscale: y.attention_factor };
}

const memo = new WeakMap<QwenConfig, Map<number, RopeFreqs>>();

/** What rope() takes for this model and nRot rotated dims: rope_theta, or YaRN's frequencies (one
 * object per config and nRot, so a backend's table keyed by it is built once per pass). */
export function ropeBase(c: QwenConfig, nRot = c.head_dim): number | RopeFreqs {
  const y = c.rope_scaling;
  if (!y) return c.rope_theta;
  let m = memo.get(c);
  if (!m) memo.set(c, (m = new Map()));
  let f = m.get(nRot);
  if (!f) m.set(nRot, (f = yarnFreqs(y, c.rope_theta, nRot)));
  return f;
}
