// AdamW with PyTorch's defaults and update order (torch.optim.AdamW, non-fused, amsgrad off):
//   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// Weight decay is decoupled (applied to the weights, not added to the gradient), as in PEFT +
// transformers' Trainer, which decays LoRA matrices too. State is f32, as torch keeps it.

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export const ADAMW_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 } as const;

/** First and second moments of one parameter tensor. */
export interface Moments {
  m: Float32Array;
  v: Float32Array;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** optimizer steps taken (torch's per-parameter `step`, the same for all here) */
  step = 0;
  readonly state = new Map<string, Moments>();

  constructor(o: Omit<AdamWOptions, 'lr'> = {}) {
    this.beta1 = o.beta1 ?? ADAMW_DEFAULTS.beta1;
    this.beta2 = o.beta2 ?? ADAMW_DEFAULTS.beta2;
    this.eps = o.eps ?? ADAMW_DEFAULTS.eps;
    this.weightDecay = o.weightDecay ?? ADAMW_DEFAULTS.weightDecay;
  }

  /** Moments of a named parameter (zeros the first time). */
  moments(name: string, n: number): Moments {
    let s = this.state.get(name);
    if (!s) {
      s = { m: new Float32Array(n), v: new Float32Array(n) };
      this.state.set(name, s);
    }
    return s;
  }

  /** Start an optimizer step; then update() each parameter with it. */
  begin(): void {
    this.step++;
  }

  /** One AdamW update of `p` in place with gradient `g` (already averaged / clipped) at learning rate lr. */
  update(name: string, p: Float32Array, g: Float32Array, lr: number): void {
    const { m, v } = this.moments(name, p.length);
    const b1 = this.beta1,
      b2 = this.beta2;
    const bc1 = 1 - b1 ** this.step,
      bc2 = Math.sqrt(1 - b2 ** this.step);
    const stepSize = lr / bc1;
    const decay = 1 - lr * this.weightDecay;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]!;
      const mi = b1 * m[i]! + (1 - b1) * gi;
      const vi = b2 * v[i]! + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2 + this.eps);
    }
  }
}

/** transformers' get_linear_schedule_with_warmup: 0 -> lr over `warmup` steps, then linearly to 0 at `total`. */
export function linearSchedule(lr: number, step: number, warmup: number, total: number): number {
  if (step < warmup) return (lr * step) / Math.max(1, warmup);
  return lr * Math.max(0, (total - step) / Math.max(1, total - warmup));
}

/** Scale gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_); returns the norm before. */
export function clipGradNorm(grads: Float32Array[], maxNorm: number): number {
  let sq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  // torch: clip_coef = max_norm / (total_norm + 1e-6), applied when below 1
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
  return norm;
}
