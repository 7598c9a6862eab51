// The training loop's plumbing (AdamW, schedule, init, batching, checkpoints, resume, NaN stop) with a
// stand-in gradient core: a quadratic in the adapter's values. It says nothing of the model's
// gradients (grad.test.ts) or of learning a task (finetune.test.ts).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { LoraAdapter } from '../../src/lora/adapter.js';
import { readHfConfig } from '../../src/models/load.js';
import { AdamW, clipGradNorm, linearSchedule } from '../../src/train/adamw.js';
import { readTrainerState } from '../../src/train/checkpoint.js';
import type { TrainSeq } from '../../src/train/data.js';
import { initAdapter, parseTargets } from '../../src/train/init.js';
import { type GradCore, type LoopOptions, planEpoch, trainLoop } from '../../src/train/loop.js';
import { expectError, FIXTURES, rng, tmpDir } from '../helpers.js';

const config = readHfConfig(path.join(FIXTURES, 'models/qwen3-tiny-tied'));

test('AdamW and gradient clipping match torch.optim.AdamW + clip_grad_norm_ (defaults, lr 0.05, 3 steps)', () => {
  // torch 1.13: p = Parameter([...]); opt = AdamW([p, q], lr=0.05); per step: p.grad = g;
  // clip_grad_norm_([p, q], 1.0); opt.step()  (printed with float())
  const p = Float32Array.of(0.5, -0.25, 1.0, 0.0, -2.0, 3.0),
    q = Float32Array.of(0.1, 0.2);
  const gp = [
    [0.1, -0.2, 0.3, 0.0, 1.5, -0.7],
    [0.2, 0.1, -0.3, 0.05, 1.0, -0.1],
    [-0.1, 0.4, 0.2, 0.0, 0.5, 0.3],
  ];
  const gq = [
    [3.0, 4.0],
    [0.3, 0.4],
    [-1.0, 0.0],
  ];
  const norms = [5.280151844024658, 1.184272050857544, 1.2449899911880493];
  const opt = new AdamW();
  for (let s = 0; s < 3; s++) {
    const g1 = Float32Array.from(gp[s]!),
      g2 = Float32Array.from(gq[s]!);
    assert.ok(Math.abs(clipGradNorm([g1, g2], 1) - norms[s]!) < 1e-6);
    opt.begin();
    opt.update('p', p, g1, 0.05);
    opt.update('q', q, g2, 0.05);
  }
  const want = [0.39382174611091614, -0.2549324929714203, 0.9797449707984924, -0.0659492164850235, -2.138380289077759, 3.087282180786133, 0.007785988040268421, 0.06865058839321136];
  [...p, ...q].forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-6 * Math.max(1, Math.abs(want[i]!)), `element ${i}: ${v} vs ${want[i]}`));
});

test('linear schedule: warmup from 0, then down to 0 at the last step (transformers)', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((s) => linearSchedule(1, s, 2, 6)),
    [0, 0.5, 1, 0.75, 0.5, 0.25, 0],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((s) => linearSchedule(2, s, 0, 4)),
    [2, 1.5, 1, 0.5],
  );
});

test('adapter init: PEFT shapes and names, A in U(-1/sqrt(K), 1/sqrt(K)), B zero, seeded', () => {
  const a = initAdapter(config, { rank: 4, alpha: 8, seed: 7 });
  assert.equal(a.modules.length, config.num_hidden_layers * 7);
  const q = a.modules.find((m) => m.name === 'model.layers.1.self_attn.q_proj')!;
  assert.deepEqual([q.r, q.inFeatures, q.outFeatures, q.scale], [4, 64, 4 * 32, 2]);
  const d = a.modules.find((m) => m.name === 'model.layers.0.mlp.down_proj')!;
  assert.deepEqual([d.inFeatures, d.outFeatures], [128, 64]);
  for (const m of a.modules) {
    const bound = 1 / Math.sqrt(m.inFeatures);
    assert.ok(m.a.every((v) => Math.abs(v) <= bound));
    assert.ok(m.b.every((v) => v === 0));
    // variance of U(-b, b) is b^2/3
    const varA = m.a.reduce((s, v) => s + v * v, 0) / m.a.length;
    assert.ok(Math.abs(varA / ((bound * bound) / 3) - 1) < 0.25, `${m.name}: variance ${varA}`);
  }
  assert.deepEqual(initAdapter(config, { rank: 4, alpha: 8, seed: 7 }).modules[5]!.a, a.modules[5]!.a);
  assert.notDeepEqual(initAdapter(config, { rank: 4, alpha: 8, seed: 8 }).modules[5]!.a, a.modules[5]!.a);
  assert.equal(initAdapter(config, { rank: 4, alpha: 8, rslora: true, seed: 1 }).modules[0]!.scale, 4);
  const two = initAdapter(config, { rank: 2, alpha: 2, seed: 1, targets: ['v_proj', 'q_proj', 'q_proj'] });
  assert.deepEqual(two.config.target_modules, ['q_proj', 'v_proj']);
  assert.deepEqual(
    two.modules.map((m) => m.name),
    ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj'],
  );
  assert.deepEqual(parseTargets(['all-linear']), ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
  expectError(() => parseTargets(['q_proj', 'qkv']), /unknown target module 'qkv': the targets are q_proj, .*down_proj/);
  expectError(() => initAdapter(config, { rank: 0, alpha: 8, seed: 1 }), /rank must be a positive integer, got 0/);
  expectError(() => initAdapter(config, { rank: 4, alpha: 0, seed: 1 }), /alpha must be a positive number/);
});

test('batches: a seeded shuffle per epoch, packed up to the token budget, every sequence once', () => {
  const lengths = [5, 9, 3, 7, 2, 8, 6, 4];
  const e0 = planEpoch(lengths, 12, 3, 0);
  assert.deepEqual(e0, planEpoch(lengths, 12, 3, 0));
  assert.notDeepEqual(e0, planEpoch(lengths, 12, 3, 1));
  assert.deepEqual(
    e0.flat().sort((x, y) => x - y),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  for (const b of e0) assert.ok(b.length === 1 || b.reduce((n, i) => n + lengths[i]!, 0) <= 12);
});

// loss per target token = 0.5 * sum over the adapter's values of (x - c)^2, c from the target token
function quadratic(nanAt = -1): GradCore<null> & { calls: number } {
  const core = {
    calls: 0,
    lossOnly(_m: null, adapter: LoraAdapter, seqs: TrainSeq[]) {
      const { loss, count } = this.lossAndGrad(_m, adapter, seqs, false);
      return { loss, count };
    },
    lossAndGrad(_m: null, adapter: LoraAdapter, seqs: TrainSeq[], count_call = true) {
      if (count_call && core.calls++ === nanAt) return { loss: Number.NaN, count: 1, grads: { get: () => undefined } };
      const grads = new Map(adapter.modules.map((m) => [m.name, { a: new Float32Array(m.a.length), b: new Float32Array(m.b.length) }]));
      let loss = 0,
        count = 0;
      for (const s of seqs)
        for (let t = 1; t < s.tokens.length; t++) {
          if (!s.mask[t]) continue;
          const c = s.tokens[t]! / 256;
          count++;
          for (const m of adapter.modules) {
            const g = grads.get(m.name)!;
            for (const [x, gx] of [
              [m.a, g.a],
              [m.b, g.b],
            ] as const)
              for (let i = 0; i < x.length; i++) {
                loss += 0.5 * (x[i]! - c) ** 2;
                gx[i] = gx[i]! + x[i]! - c;
              }
          }
        }
      return { loss, count, grads };
    },
  };
  return core;
}

const rand = rng(11);
const seqs: TrainSeq[] = Array.from({ length: 10 }, () => {
  const n = 4 + Math.floor(rand() * 6);
  return { tokens: Int32Array.from({ length: n }, () => Math.floor(rand() * 256)), mask: Uint8Array.from({ length: n }, (_, i) => (i >= 2 ? 1 : 0)) };
});
const small = () => initAdapter(config, { rank: 2, alpha: 4, seed: 5, targets: ['q_proj', 'down_proj'] });
const opts = (out: string, more: Partial<LoopOptions> = {}): LoopOptions => ({ out, lr: 0.05, epochs: 3, batchTokens: 16, gradAccum: 2, seed: 9, ...more });
const adapterBytes = (dir: string) => fs.readFileSync(path.join(dir, 'adapter_model.safetensors'));

test('loop: deterministic for a seed, a resumed run ends with the same bytes as an uninterrupted one', () => {
  const root = tmpDir();
  const run = (dir: string, more: Partial<LoopOptions> = {}, onEvent?: Parameters<typeof trainLoop>[6]) =>
    trainLoop(quadratic(), null, small(), seqs, seqs.slice(0, 3), opts(path.join(root, dir), more), onEvent);
  const r1 = run('a');
  run('b');
  assert.ok(adapterBytes(path.join(root, 'a')).equals(adapterBytes(path.join(root, 'b'))));
  assert.equal(r1.history.length, 3);
  assert.ok(r1.history.every((h) => h.val_loss !== undefined && Number.isFinite(h.train_loss)));
  assert.equal(readTrainerState(path.join(root, 'a'))!.status, 'done');
  // the same with another seed differs
  run('c', { seed: 10 });
  assert.ok(!adapterBytes(path.join(root, 'a')).equals(adapterBytes(path.join(root, 'c'))));
  // interrupted after step 5 (checkpoints every 2 steps: the last at step 4), then resumed
  const stopAt = 5;
  assert.throws(
    () =>
      run('d', { saveSteps: 2 }, (e) => {
        if (e.type === 'step' && e.step === stopAt) throw new Error('killed');
      }),
    /killed/,
  );
  assert.equal(readTrainerState(path.join(root, 'd'))!.global_step, 4);
  expectError(() => run('d', { saveSteps: 2 }), /already holds a fine-tuning run \(trainer_state\.json\); pass --resume/);
  expectError(() => run('d', { saveSteps: 2, resume: true, lr: 0.1 }), /cannot resume: lr was 0\.05 in this run, now 0\.1/);
  const other = seqs.map((q, i) => (i === 3 ? { ...q, tokens: q.tokens.map((t) => t ^ 1) } : q));
  expectError(
    () => trainLoop(quadratic(), null, small(), other, seqs.slice(0, 3), { ...opts(path.join(root, 'd')), saveSteps: 2, resume: true }),
    /cannot resume: the training data \(or the tokenizer\) differs/,
  );
  const r2 = run('d', { saveSteps: 2, resume: true });
  assert.ok(adapterBytes(path.join(root, 'a')).equals(adapterBytes(path.join(root, 'd'))));
  assert.deepEqual(
    r2.history.map((h) => [h.train_loss, h.val_loss]),
    r1.history.map((h) => [h.train_loss, h.val_loss]),
  );
  expectError(() => trainLoop(quadratic(), null, small(), seqs, undefined, opts(path.join(root, 'nothing'), { resume: true })), /nothing to resume/);
  fs.rmSync(root, { recursive: true });
});

test('loop: a NaN loss stops with a clear message and keeps the last good adapter', () => {
  const root = tmpDir();
  const bad = path.join(root, 'bad');
  // the 7th lossAndGrad call (the 4th step's, 2 batches a step) returns NaN
  const nanCall = 6;
  expectError(
    () => trainLoop(quadratic(nanCall), null, small(), seqs, undefined, opts(bad)),
    /the training loss is NaN at step 4 of \d+ \(epoch \d\); stopped, and kept the adapter from step 2 \(the last whose loss was finite\) in .*Try a lower --lr/,
  );
  const st = readTrainerState(bad)!;
  assert.equal(st.status, 'stopped');
  // the kept adapter is the one an unbroken run had after the same number of steps
  const ref = tmpDir();
  assert.throws(
    () =>
      trainLoop(quadratic(), null, small(), seqs, undefined, opts(ref, { saveSteps: 1 }), (e) => {
        if (e.type === 'step' && e.step === st.global_step + 1) throw new Error('enough'); // step N's checkpoint is written after its event
      }),
    /enough/,
  );
  assert.ok(adapterBytes(ref).equals(adapterBytes(bad)));
  assert.equal(st.global_step, 2);
  // a NaN on the first step saves nothing
  const none = path.join(root, 'none');
  expectError(() => trainLoop(quadratic(0), null, small(), seqs, undefined, opts(none)), /NaN at step 1 of \d+, before any update worked; nothing was saved/);
  assert.equal(readTrainerState(none), undefined);
  fs.rmSync(root, { recursive: true });
  fs.rmSync(ref, { recursive: true });
});

test('loop: bad options are one-line errors', () => {
  const dir = tmpDir();
  expectError(() => trainLoop(quadratic(), null, small(), seqs, undefined, opts(dir, { lr: 0 })), /learning rate must be a positive number/);
  expectError(() => trainLoop(quadratic(), null, small(), seqs, undefined, opts(dir, { epochs: 0 })), /epochs must be a positive integer/);
  expectError(() => trainLoop(quadratic(), null, small(), seqs, undefined, opts(dir, { gradAccum: 1.5 })), /gradient accumulation must be a positive integer/);
  fs.rmSync(dir, { recursive: true });
});
