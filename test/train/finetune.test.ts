// finetune() end to end on a tiny model and a toy task (32 prompts, each with a fixed one-word
// answer): the loss falls >= 5x, greedy answers match, the saved PEFT adapter gives the same loss
// through `logits --lora`, runs are deterministic, and a resumed run ends where an unbroken one does.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { generate } from '../../src/generate/generate.js';
import { readPeftAdapter } from '../../src/lora/peft.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { readTrainData } from '../../src/train/data.js';
import { type FinetuneOptions, finetune } from '../../src/train/finetune.js';
import { loadTrainModel, lossOnly } from '../../src/train/grad.js';
import { initAdapter } from '../../src/train/init.js';
import { capture, chatModelDir, FIXTURES, tmpDir } from '../helpers.js';

const MODEL = path.join(FIXTURES, 'models/qwen3-tiny-tied');
const COLORS = ['red', 'blue', 'green', 'gold'];
const rows = Array.from({ length: 32 }, (_, i) => ({ prompt: `${'abcdefghijklmnopqrstuvwxyz'[i % 26]}${'xyzw'[i % 4]}${i}?`, completion: COLORS[(i * 7 + 3) % 4]! }));
const root = tmpDir();
const data = path.join(root, 'train.jsonl');
fs.writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
const base = (out: string, more: Partial<FinetuneOptions> = {}): FinetuneOptions => ({
  model: MODEL,
  data,
  out: path.join(root, out),
  lr: 1e-2,
  epochs: 8,
  rank: 8,
  batchTokens: 128,
  threads: 2,
  seed: 1,
  onWarning: () => {},
  ...more,
});
const adapterBytes = (out: string) => fs.readFileSync(path.join(root, out, 'adapter_model.safetensors'));

/** Cross-entropy summed over the masked targets, from logits rows (the --all output). */
function sumCe(rows: number[][], tokens: Int32Array, mask: Uint8Array): { loss: number; count: number } {
  let loss = 0,
    count = 0;
  for (let t = 0; t + 1 < tokens.length; t++) {
    if (!mask[t + 1]) continue;
    const r = rows[t]!;
    const max = Math.max(...r);
    const lse = max + Math.log(r.reduce((s, v) => s + Math.exp(v - max), 0));
    loss += lse - r[tokens[t + 1]!]!;
    count++;
  }
  return { loss, count };
}

test('toy task: loss falls >= 5x, greedy answers match, the saved adapter reproduces the loss, deterministic, resumable', async (t) => {
  const events: string[] = [];
  const r = await finetune(base('a'), (e) => events.push(e.type));
  assert.equal(r.history.length, 8);
  assert.ok(events.includes('start') && events.filter((e) => e === 'epoch').length === 8);

  // loss over the whole training set: base model (the initial adapter has B = 0) vs trained adapter
  const tok = loadTokenizer(MODEL);
  const seqs = readTrainData(data, tok, { maxTokens: 256 });
  const tm = await loadTrainModel(MODEL, { threads: 2 });
  const mean = (a: ReturnType<typeof initAdapter>) => {
    const l = lossOnly(tm, a, seqs);
    return l.loss / l.count;
  };
  const before = mean(initAdapter(tm.config, { rank: 8, alpha: 16, seed: 1 }));
  const trained = readPeftAdapter(path.join(root, 'a'));
  const after = mean(trained);
  tm.dispose();
  assert.ok(before / after >= 5, `loss ${before} -> ${after}`);

  // greedy answers with the adapter loaded as run / serve load it
  const model = loadModel(MODEL, { lora: [{ path: path.join(root, 'a'), default: true }] });
  let right = 0;
  for (const row of rows) {
    const out: number[] = [];
    for await (const s of generate(model, tok.encode(row.prompt), { temperature: 0, max_tokens: 6, stop_tokens: tok.eosTokenIds })) out.push(s.token);
    if (tok.decode(out) === row.completion) right++;
  }
  assert.ok(right >= 0.9 * rows.length, `${right}/${rows.length} greedy answers right`);

  // the loss again, from `logits --all --lora` (the inference path) on every example
  let sum = 0,
    n = 0;
  for (const s of seqs) {
    const { out } = await capture(async () => {
      assert.equal(await main(['logits', '--model', MODEL, '--tokens', [...s.tokens].join(','), '--all', '--lora', path.join(root, 'a'), '--threads', '1']), 0);
    });
    const ce = sumCe(JSON.parse(out).logits, s.tokens, s.mask);
    sum += ce.loss;
    n += ce.count;
  }
  t.diagnostic(`mean loss ${before.toFixed(3)} -> ${after.toFixed(5)} (${(before / after).toFixed(0)}x), greedy ${right}/${rows.length}, logits --lora ${(sum / n).toFixed(5)}`);
  assert.ok(Math.abs(sum / n - after) <= 1e-3 * Math.max(after, 1e-2), `logits --lora: ${sum / n}, training forward: ${after}`);

  // the same run again gives the same bytes; a run interrupted after step 10 (saved at 9) and resumed, too
  await finetune(base('b'));
  assert.ok(adapterBytes('a').equals(adapterBytes('b')), 'two runs with one seed differ');
  await assert.rejects(
    finetune(base('c', { saveSteps: 3 }), (e) => {
      if (e.type === 'step' && e.step === 10) throw new Error('interrupted');
    }),
    /interrupted/,
  );
  await finetune(base('c', { saveSteps: 3, resume: true }));
  assert.ok(adapterBytes('a').equals(adapterBytes('c')), 'a resumed run differs from an unbroken one');
});

test('chat lines on the Qwen3 chat template: the validation loss falls each epoch', async () => {
  const chats = Array.from({ length: 12 }, (_, i) => ({
    messages: [
      { role: 'system', content: 'Answer with a color.' },
      { role: 'user', content: `Item ${i}?` },
      { role: 'assistant', content: COLORS[i % 3] },
    ],
  }));
  const file = path.join(root, 'chat.jsonl');
  fs.writeFileSync(file, chats.map((c) => JSON.stringify(c)).join('\n'));
  const r = await finetune({ model: chatModelDir('qwen3'), data: file, val: file, out: path.join(root, 'chat'), lr: 1e-2, epochs: 3, batchTokens: 256, threads: 2 });
  const val = r.history.map((h) => h.val_loss!);
  assert.ok(val[0]! > val[1]! && val[1]! > val[2]!, `validation losses ${val}`);
});

test('finetune CLI: --json lines per epoch, bad input in one line', async () => {
  const out = path.join(root, 'cli');
  const { out: stdout } = await capture(async () => {
    assert.equal(
      await main([
        'finetune',
        '--model',
        MODEL,
        '--data',
        data,
        '--val',
        data,
        '--out',
        out,
        '--epochs',
        '2',
        '--lr',
        '1e-2',
        '--batch-tokens',
        '128',
        '--threads',
        '2',
        '--json',
        '--target',
        'q_proj,v_proj',
      ]),
      0,
    );
  });
  const lines = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.epoch),
    [1, 2],
  );
  for (const l of lines) assert.ok(Number.isFinite(l.train_loss) && Number.isFinite(l.val_loss) && l.tokens_per_second > 0);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')).target_modules, ['q_proj', 'v_proj']);
  const bad = async (args: string[], re: RegExp) => {
    const { err } = await capture(async () => {
      assert.equal(await main(['finetune', '--model', MODEL, '--data', data, '--out', path.join(root, 'bad'), '--threads', '1', ...args]), 1);
    });
    const errors = err.split('\n').filter((l) => l.startsWith('qwen-ts finetune:'));
    assert.equal(errors.length, 1, err);
    assert.match(errors[0]!, re);
  };
  await bad(['--rank', '0'], /--rank must be at least 1/);
  await bad(['--target', 'q_proj,qkv'], /unknown target module 'qkv'/);
  await bad(['--lr', 'fast'], /--lr must be a positive number, got 'fast'/);
  await bad(['--out', out], /already holds a fine-tuning run/);
  // a learning rate that sends the loss to NaN: stopped, the last finite adapter kept
  await bad(['--lr', '1e9', '--max-grad-norm', '0', '--batch-tokens', '64', '--epochs', '2'], /loss is NaN at step \d+ of \d+ .*kept the adapter from step \d+ .*Try a lower --lr/);
  assert.ok(fs.existsSync(path.join(root, 'bad', 'adapter_model.safetensors')));
  fs.writeFileSync(path.join(root, 'broken.jsonl'), `${JSON.stringify(rows[0])}\n{"messages": [{"role": "user", "content": "hi"}]}\n`);
  await bad(['--data', path.join(root, 'broken.jsonl'), '--out', path.join(root, 'bad2')], /broken\.jsonl: line 2: no assistant turn/);
  fs.writeFileSync(path.join(root, 'empty.jsonl'), '');
  await bad(['--data', path.join(root, 'empty.jsonl'), '--out', path.join(root, 'bad2')], /empty\.jsonl: no training examples/);
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
