// qwen-ts finetune --model M --data train.jsonl --out ADAPTER_DIR [...]: LoRA fine-tuning to a PEFT adapter.
import { parseArgs } from 'node:util';
import { fail, quote } from '../errors.js';
import { LORA_TARGETS } from '../lora/adapter.js';
import { type FinetuneEvent, finetune } from '../train/finetune.js';
import { positiveInt } from './embed.js';
import { bar } from './progress.js';
import { quantizeFromArgs } from './resolve.js';

const HELP = `usage: qwen-ts finetune --model <model> --data train.jsonl --out ADAPTER_DIR [options]
Trains a LoRA adapter on a dense Qwen2 / Qwen2.5 / Qwen3 model (any stored type) and writes it as a
PEFT adapter (adapter_config.json + adapter_model.safetensors) that run/serve --lora, PEFT and vLLM load.
Data: JSONL, one example a line: {"messages": [...]} (OpenAI's chat fine-tuning format, rendered with
the model's chat template; the loss is on assistant turns, "weight": 0 skips one) or
{"prompt": "...", "completion": "..."} (no template; the loss is on the completion and an EOS).
  --rank N              LoRA rank (default 8)
  --alpha A             lora_alpha (default 2 x rank); the update is scaled by alpha / rank
  --rslora              scale by alpha / sqrt(rank) (PEFT's use_rslora)
  --target LIST         modules to adapt, comma-separated: ${LORA_TARGETS.join(',')}
                        (default: all of them, PEFT's all-linear)
  --lr LR               peak learning rate (default 2e-4); warmup, then linear decay to 0
  --warmup N            warmup steps (default 0)
  --epochs N            passes over the data (default 3)
  --batch-tokens N      tokens per batch: whole examples, shuffled, grouped up to N (default 2048)
  --grad-accum N        batches per optimizer step (default 1)
  --max-seq-len N       longer examples are cut to N tokens with a warning (default: the model's
                        context, at most 4096); --no-truncate refuses them instead
  --val val.jsonl       validation data: its loss is reported after each epoch
  --weight-decay W      AdamW's decoupled weight decay (default 0.01)
  --max-grad-norm G     clip the gradient norm (default 1; 0: no clipping)
  --seed N              shuffles and initial A matrices (default 0); a run is deterministic for a
                        seed and thread count
  --save-steps N        also save a checkpoint every N steps (default: after each epoch)
  --resume              continue the run saved in --out (same data and options)
  --threads N           worker threads (default: the number of cores)
  --quantize q8_0|q4_0|q4_k  quantise the frozen base's F32/F16/BF16 matrices as they load
  --json                print a JSON line per epoch: epoch, step, train_loss, val_loss, tokens_per_second`;

function positiveNumber(v: string | undefined, flag: string, zero = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !zero)) fail(`${flag} must be a ${zero ? 'non-negative' : 'positive'} number, got ${quote(v)}`);
  return n;
}

function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) fail(`${flag} must be a non-negative integer, got ${quote(v)}`);
  return Number(v);
}

function clock(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600),
    m = Math.floor((t % 3600) / 60),
    sec = t % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', short: 'm' },
      data: { type: 'string' },
      out: { type: 'string' },
      val: { type: 'string' },
      rank: { type: 'string' },
      alpha: { type: 'string' },
      rslora: { type: 'boolean' },
      target: { type: 'string', multiple: true },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      epochs: { type: 'string' },
      'batch-tokens': { type: 'string' },
      'grad-accum': { type: 'string' },
      'max-seq-len': { type: 'string' },
      'no-truncate': { type: 'boolean' },
      'weight-decay': { type: 'string' },
      'max-grad-norm': { type: 'string' },
      seed: { type: 'string' },
      'save-steps': { type: 'string' },
      resume: { type: 'boolean' },
      threads: { type: 'string' },
      quantize: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(HELP + '\n');
  for (const f of ['model', 'data', 'out'] as const) if (!values[f]) fail(`--${f} is required\n${HELP}`);
  if (values.rank !== undefined && /^0+$/.test(values.rank)) fail('--rank must be at least 1 (a rank-0 adapter changes nothing)');
  const targets = values.target?.flatMap((t) => t.split(',').map((s) => s.trim())).filter((t) => t !== '');
  const tty = Boolean(process.stderr.isTTY) && !values.json;
  let last = 0;
  const onProgress = (e: FinetuneEvent) => {
    if (e.type === 'start') process.stderr.write(`${e.examples} training examples (${e.tokens} tokens)${e.valExamples ? `, ${e.valExamples} validation examples` : ''}\n`);
    else if (e.type === 'step' && tty && (Date.now() - last > 100 || e.step === e.totalSteps)) {
      last = Date.now();
      const pct = `${String(Math.floor((100 * e.step) / e.totalSteps)).padStart(3)}%`;
      process.stderr.write(
        `\r\x1b[2Kepoch ${e.epoch} ${bar(e.step / e.totalSteps, 24)} ${pct} step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(4)} ${e.tokensPerSecond.toFixed(0)} tok/s ETA ${clock(e.etaSeconds)}`,
      );
    } else if (e.type === 'epoch') {
      if (tty) process.stderr.write('\r\x1b[2K');
      const { type: _, ...record } = e;
      if (values.json) process.stdout.write(JSON.stringify(record) + '\n');
      else
        process.stderr.write(
          `epoch ${e.epoch}: train loss ${e.train_loss.toFixed(4)}${e.val_loss === undefined ? '' : `, val loss ${e.val_loss.toFixed(4)}`}, ${e.tokens_per_second.toFixed(0)} tokens/s\n`,
        );
    }
  };
  const r = await finetune(
    {
      model: values.model!,
      data: values.data!,
      out: values.out!,
      val: values.val,
      rank: positiveInt(values.rank, '--rank'),
      alpha: positiveNumber(values.alpha, '--alpha'),
      rslora: values.rslora,
      targets,
      lr: positiveNumber(values.lr, '--lr'),
      warmup: count(values.warmup, '--warmup'),
      epochs: positiveInt(values.epochs, '--epochs'),
      batchTokens: positiveInt(values['batch-tokens'], '--batch-tokens'),
      gradAccum: positiveInt(values['grad-accum'], '--grad-accum'),
      maxSeqLen: positiveInt(values['max-seq-len'], '--max-seq-len'),
      truncate: !values['no-truncate'],
      weightDecay: positiveNumber(values['weight-decay'], '--weight-decay', true),
      maxGradNorm: positiveNumber(values['max-grad-norm'], '--max-grad-norm', true),
      seed: count(values.seed, '--seed'),
      saveSteps: positiveInt(values['save-steps'], '--save-steps'),
      resume: values.resume,
      threads: positiveInt(values.threads, '--threads'),
      quantize: quantizeFromArgs(values),
    },
    onProgress,
  );
  const lastEpoch = r.history.at(-1);
  process.stderr.write(`wrote the adapter to ${r.out} (${r.steps} steps${lastEpoch ? `, final train loss ${lastEpoch.train_loss.toFixed(4)}` : ''})\n`);
}
