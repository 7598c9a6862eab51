// The training loop: seeded shuffles, batches of at most batchTokens tokens, gradient accumulation,
// AdamW with a linear schedule and gradient clipping, per-epoch validation, checkpoints for --resume,
// and a stop on a NaN / infinite loss that keeps the last good adapter. The gradient core is passed
// in (grad.ts in use; a stand-in in the loop's own tests), so this file knows nothing of the model.
import { createHash } from 'node:crypto';
import { fail } from '../errors.js';
import { Rng } from '../generate/sampler.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { AdamW, clipGradNorm, linearSchedule } from './adamw.js';
import { type EpochRecord, loadCheckpoint, readTrainerState, saveCheckpoint, TRAINER_STATE, type TrainerState } from './checkpoint.js';
import type { LoraGrads, TrainSeq } from './grad.js';

/** lossAndGrad / lossOnly of the gradient core (grad.ts): summed losses, their target count, gradients of the sum. */
export interface GradCore<M> {
  lossAndGrad(model: M, adapter: LoraAdapter, seqs: TrainSeq[]): { loss: number; count: number; grads: LoraGrads };
  lossOnly(model: M, adapter: LoraAdapter, seqs: TrainSeq[]): { loss: number; count: number };
}

export interface LoopOptions {
  out: string;
  lr: number;
  epochs: number;
  batchTokens: number;
  gradAccum: number;
  seed: number;
  /** linear warmup steps (default 0) */
  warmup?: number;
  /** 'linear' decays to 0 at the last step (transformers' default), 'constant' keeps lr */
  schedule?: 'linear' | 'constant';
  weightDecay?: number;
  /** clip the global gradient norm (transformers' max_grad_norm, default 1; 0 = off) */
  maxGradNorm?: number;
  /** also checkpoint every this many optimizer steps (default: at each epoch's end only) */
  saveSteps?: number;
  resume?: boolean;
  /** recorded with the run's options: a resume must match (rank, alpha, targets, data limits...) */
  runOptions?: Record<string, unknown>;
}

export type TrainEvent = { type: 'step'; epoch: number; step: number; totalSteps: number; loss: number; lr: number; tokensPerSecond: number; etaSeconds: number } | ({ type: 'epoch' } & EpochRecord);

export interface TrainResult {
  steps: number;
  history: EpochRecord[];
}

/** Consecutive runs of `order` of at most batchTokens tokens (a longer sequence gets a batch of its own). */
export function pack(lengths: readonly number[], order: readonly number[], batchTokens: number): number[][] {
  const batches: number[][] = [];
  let cur: number[] = [],
    tokens = 0;
  for (const i of order) {
    const n = lengths[i]!;
    if (cur.length && tokens + n > batchTokens) {
      batches.push(cur);
      cur = [];
      tokens = 0;
    }
    cur.push(i);
    tokens += n;
  }
  if (cur.length) batches.push(cur);
  return batches;
}

/** Epoch e's batches: a shuffle seeded by (seed, e), then packed. */
export function planEpoch(lengths: readonly number[], batchTokens: number, seed: number, epoch: number): number[][] {
  const order = lengths.map((_, i) => i);
  const rng = new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b9)) >>> 0);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return pack(lengths, order, batchTokens);
}

/** sha256 over the sequences' tokens and masks: a resume checks it sees the same data. */
export function fingerprint(seqs: readonly TrainSeq[]): string {
  const h = createHash('sha256');
  for (const s of seqs) {
    h.update(new Uint8Array(Int32Array.of(s.tokens.length).buffer));
    h.update(new Uint8Array(s.tokens.buffer, s.tokens.byteOffset, s.tokens.byteLength));
    h.update(s.mask);
  }
  return h.digest('hex');
}

/** Mean loss per target token of seqs under the adapter, in batches of at most batchTokens tokens. */
export function meanLoss<M>(core: GradCore<M>, model: M, adapter: LoraAdapter, seqs: TrainSeq[], batchTokens: number): number {
  let loss = 0,
    count = 0;
  const lengths = seqs.map((s) => s.tokens.length);
  for (const b of pack(
    lengths,
    lengths.map((_, i) => i),
    batchTokens,
  )) {
    const r = core.lossOnly(
      model,
      adapter,
      b.map((i) => seqs[i]!),
    );
    loss += r.loss;
    count += r.count;
  }
  return loss / count;
}

/** Train `adapter` in place on `train`; checkpoints (and the final adapter) go to o.out. */
export function trainLoop<M>(core: GradCore<M>, model: M, adapter: LoraAdapter, train: TrainSeq[], val: TrainSeq[] | undefined, o: LoopOptions, onEvent?: (e: TrainEvent) => void): TrainResult {
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) fail(`the learning rate must be a positive number, got ${o.lr}`);
  for (const [k, v] of [
    ['epochs', o.epochs],
    ['batch tokens', o.batchTokens],
    ['gradient accumulation', o.gradAccum],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) fail(`${k} must be a positive integer, got ${v}`);
  }
  const lengths = train.map((s) => s.tokens.length);
  const plans = Array.from({ length: o.epochs }, (_, e) => planEpoch(lengths, o.batchTokens, o.seed, e));
  const groupsIn = (e: number) => Math.ceil(plans[e]!.length / o.gradAccum);
  const totalSteps = plans.reduce((n, _, e) => n + groupsIn(e), 0);
  const warmup = o.warmup ?? 0;
  const maxNorm = o.maxGradNorm ?? 1;
  const opt = new AdamW({ weightDecay: o.weightDecay });
  const options = {
    ...o.runOptions,
    lr: o.lr,
    epochs: o.epochs,
    batch_tokens: o.batchTokens,
    grad_accum: o.gradAccum,
    seed: o.seed,
    warmup,
    schedule: o.schedule ?? 'linear',
    weight_decay: opt.weightDecay,
    max_grad_norm: maxNorm,
  };
  const data = fingerprint(train);
  let state: TrainerState = {
    format: '',
    global_step: 0,
    total_steps: totalSteps,
    epoch: 0,
    group: 0,
    epoch_loss: 0,
    epoch_count: 0,
    options,
    data,
    history: [],
    status: 'running',
  };
  if (o.resume) state = loadCheckpoint(o.out, adapter, opt, options, data);
  else if (readTrainerState(o.out)) fail(`${o.out} already holds a fine-tuning run (${TRAINER_STATE}); pass --resume to continue it, or choose another output folder`);
  const params = adapter.modules.flatMap((m) => [
    { name: `${m.name}.lora_A`, module: m.name, part: 'a' as const, p: m.a, g: new Float32Array(m.a.length) },
    { name: `${m.name}.lora_B`, module: m.name, part: 'b' as const, p: m.b, g: new Float32Array(m.b.length) },
  ]);
  const started = Date.now();
  let tokensSeen = 0,
    stepsRun = 0;
  const tokensPerSecond = () => tokensSeen / Math.max(1e-3, (Date.now() - started) / 1000);
  // the weights and moments before the latest step: a NaN loss condemns the latest step's weights
  // (they produced it), so the ones before it, whose loss was finite, are what is kept
  const before = { state, step: opt.step, p: params.map((q) => Float32Array.from(q.p)), m: params.map((q) => new Float32Array(q.p.length)), v: params.map((q) => new Float32Array(q.p.length)) };
  const stop = (what: string, at = state.global_step + 1) => {
    if (state.global_step > 0 && before.state !== state) {
      params.forEach((q, i) => {
        q.p.set(before.p[i]!);
        const mo = opt.moments(q.name, q.p.length);
        mo.m.set(before.m[i]!);
        mo.v.set(before.v[i]!);
      });
      opt.step = before.step;
      state = before.state;
    }
    if (state.global_step === 0) fail(`${what} at step ${at} of ${totalSteps}, before any update worked; nothing was saved. Check the data and the model, or try a lower --lr`);
    saveCheckpoint(o.out, adapter, opt, { ...state, status: 'stopped' });
    fail(
      `${what} at step ${at} of ${totalSteps} (epoch ${Math.min(state.epoch, o.epochs - 1) + 1}); stopped, and kept the adapter from step ${state.global_step} (the last whose loss was finite) in ${o.out}. Try a lower --lr`,
    );
  };
  for (let e = state.epoch; e < o.epochs; e++) {
    const plan = plans[e]!;
    for (let g = e === state.epoch ? state.group : 0; g < groupsIn(e); g++) {
      for (const q of params) q.g.fill(0);
      let loss = 0,
        count = 0;
      for (const batch of plan.slice(g * o.gradAccum, (g + 1) * o.gradAccum)) {
        const seqs = batch.map((i) => train[i]!);
        const r = core.lossAndGrad(model, adapter, seqs);
        if (!Number.isFinite(r.loss)) stop(`the training loss is ${r.loss}`);
        loss += r.loss;
        count += r.count;
        tokensSeen += seqs.reduce((n, s) => n + s.tokens.length, 0);
        for (const q of params) {
          const gr = r.grads.get(q.module)?.[q.part];
          if (gr) for (let i = 0; i < gr.length; i++) q.g[i] = q.g[i]! + gr[i]!;
        }
      }
      // the loss is a mean over the step's target tokens, as the gradients must be
      const inv = 1 / Math.max(1, count);
      for (const q of params) for (let i = 0; i < q.g.length; i++) q.g[i] = q.g[i]! * inv;
      const norm = clipGradNorm(
        params.map((q) => q.g),
        maxNorm > 0 ? maxNorm : Infinity,
      );
      if (!Number.isFinite(norm)) stop(`the gradient norm is ${norm}`);
      const lr = o.schedule === 'constant' ? o.lr : linearSchedule(o.lr, state.global_step, warmup, totalSteps);
      before.state = state;
      before.step = opt.step;
      params.forEach((q, i) => {
        const mo = opt.moments(q.name, q.p.length);
        before.p[i]!.set(q.p);
        before.m[i]!.set(mo.m);
        before.v[i]!.set(mo.v);
      });
      opt.begin();
      for (const q of params) opt.update(q.name, q.p, q.g, lr);
      stepsRun++;
      state = { ...state, global_step: state.global_step + 1, epoch: e, group: g + 1, epoch_loss: state.epoch_loss + loss, epoch_count: state.epoch_count + count };
      const secondsPerStep = (Date.now() - started) / 1000 / stepsRun;
      onEvent?.({
        type: 'step',
        epoch: e + 1,
        step: state.global_step,
        totalSteps,
        loss: loss * inv,
        lr,
        tokensPerSecond: tokensPerSecond(),
        etaSeconds: secondsPerStep * (totalSteps - state.global_step),
      });
      if (o.saveSteps && state.global_step % o.saveSteps === 0 && g + 1 < groupsIn(e)) saveCheckpoint(o.out, adapter, opt, state);
    }
    const record: EpochRecord = { epoch: e + 1, step: state.global_step, train_loss: state.epoch_loss / Math.max(1, state.epoch_count), tokens_per_second: tokensPerSecond() };
    if (val?.length) {
      record.val_loss = meanLoss(core, model, adapter, val, o.batchTokens);
      if (!Number.isFinite(record.val_loss)) stop(`the validation loss is ${record.val_loss}`, state.global_step);
    }
    state = { ...state, epoch: e + 1, group: 0, epoch_loss: 0, epoch_count: 0, history: [...state.history, record], status: e + 1 === o.epochs ? 'done' : 'running' };
    saveCheckpoint(o.out, adapter, opt, state);
    onEvent?.({ type: 'epoch', ...record });
  }
  return { steps: state.global_step, history: state.history };
}
