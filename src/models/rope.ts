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

/**
 * M-RoPE's section map for ropeMulti with positions (t, h, w): which column each of the nRot/2
 * pairs turns by, as ggml's rope_multi picks it (pair i's sector is i mod the sections' sum).
 * 'mrope' (Qwen2-VL / Qwen2.5-VL, `mrope_section` [16, 24, 24]): t for the first s0 sectors, then
 * h, then w. 'imrope' (Qwen3.5, interleaved): sector % 3 == 1 -> h while < 3*s1, == 2 -> w while
 * < 3*s2, == 0 -> t while < 3*s0. A pair left to the fourth section (e) is refused: Qwen's
 * sections cover every pair, and llama.cpp's e position is always 0.
 */
export function mropeSect(sections: readonly number[], nRot: number, kind: 'mrope' | 'imrope'): Uint8Array {
  const [s0 = 0, s1 = 0, s2 = 0] = sections;
  const sum = sections.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new Error(`M-RoPE sections ${JSON.stringify(sections)} add up to nothing`);
  const sect = new Uint8Array(nRot / 2);
  for (let i = 0; i < nRot / 2; i++) {
    const k = i % sum;
    let c = -1;
    if (kind === 'mrope') c = k < s0 ? 0 : k < s0 + s1 ? 1 : k < s0 + s1 + s2 ? 2 : -1;
    else c = k % 3 === 1 && k < 3 * s1 ? 1 : k % 3 === 2 && k < 3 * s2 ? 2 : k % 3 === 0 && k < 3 * s0 ? 0 : -1;
    if (c < 0) throw new Error(`M-RoPE sections ${JSON.stringify(sections)} leave rotary pair ${i} of ${nRot / 2} to the fourth section, which qwen.ts does not implement`);
    sect[i] = c;
  }
  return sect;
}

/**
 * The vision towers' 2-D RoPE (ggml's GGML_ROPE_TYPE_VISION, HF's rotary over cat(h, w)) for
 * ropeMulti with positions (y, x): NEOX pairs of a head of `headDim`; pair i < d/4 turns by
 * y * theta^(-4i/d), pair d/4 <= i < d/2 by x * theta^(-4(i - d/4)/d).
 */
export function visionRope(headDim: number, theta = 10000): { sect: Uint8Array; freqs: RopeFreqs } {
  if (headDim % 4 !== 0) throw new Error(`the vision RoPE needs a head size that is a multiple of 4, got ${headDim}`);
  const q = headDim / 4;
  const sect = new Uint8Array(2 * q),
    inv = new Float64Array(2 * q);
  for (let i = 0; i < 2 * q; i++) {
    sect[i] = i < q ? 0 : 1;
    inv[i] = Math.pow(theta, (-4 * (i % q)) / headDim);
  }
  return { sect, freqs: { inv, mscale: 1 } };
}
