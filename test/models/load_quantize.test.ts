// Load-time quantisation (LoadOptions.quantize, the CLI's --quantize): float matrices become the
// same bytes `qwen-ts quantize --type T --pure` writes for them, so the logits are exactly those of the
// quantised file; the conversion in pieces of rows changes nothing; an already-quantised model
// loads as stored, with a note.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { Weight } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { DTYPES, type DType } from '../../src/formats/dtype.js';
import { targetType } from '../../src/formats/to_gguf.js';
import { loadModel, type LoadOptions } from '../../src/models/load.js';
import { WeightLoader, type LoadQuantType } from '../../src/models/weights.js';
import { fixtureDir, ROOT, tmpDir } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const QWEN2 = fixtureDir('models/qwen2-tiny-tied');
const QWEN35 = fixtureDir('models/qwen35-tiny');
const work = tmpDir();
const IDS = [261, 72, 101, 108, 108, 111, 44, 32, 119];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `qwen-ts quantize SRC OUT --type T --pure`, once per source and type. */
const made = new Map<string, string>();
function quantized(src: string, type: string): string {
  const key = `${src}|${type}`;
  if (!made.has(key)) {
    const out = path.join(work, `${made.size}-${type}.gguf`);
    const r = cli('quantize', src, out, '--type', type, '--pure'); // the loader holds llama-quantize --pure's types
    assert.equal(r.code, 0, r.err);
    made.set(key, out);
  }
  return made.get(key)!;
}

/** The reference backend, recording every weight matrix the model allocates (in load order). */
class Recording extends ReferenceBackend {
  readonly weights: { dtype: DType; shape: number[]; w: Weight }[] = [];
  override weight(dtype: DType, shape: readonly number[]): Weight {
    const w = super.weight(dtype, shape);
    this.weights.push({ dtype, shape: [...shape], w });
    return w;
  }
}

function load(p: string, opts: LoadOptions = {}) {
  const backend = new Recording();
  const notes: string[] = [];
  const model = loadModel(p, { backend, onNote: (n) => notes.push(n), ...opts });
  const logits = model.forward(
    IDS.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
    [model.newCache(IDS.length)],
  );
  return { logits, weights: backend.weights, notes };
}

const types = (ws: Recording['weights']) => ws.map((w) => `${w.dtype} [${w.shape.join(', ')}]`);

test("targetType: the one per-tensor decision (vectors and the DeltaNet conv F32; llama-quantize's fallbacks)", () => {
  assert.equal(targetType('blk.0.ffn_up.weight', [512, 256], 'Q4_K'), 'Q4_K');
  assert.equal(targetType('blk.0.ffn_up.weight', [512, 128], 'Q4_K'), 'Q5_0'); // rows of half a Q4_K block
  assert.equal(targetType('blk.0.ffn_up.weight', [512, 48], 'Q4_K'), 'F16');
  assert.equal(targetType('blk.0.ffn_up.weight', [512, 48], 'Q8_0'), 'F16');
  assert.equal(targetType('blk.0.attn_norm.weight', [128], 'Q8_0'), 'F32');
  assert.equal(targetType('blk.0.ssm_conv1d.weight', [384, 4], 'Q8_0'), 'F32');
});

for (const type of ['q8_0', 'q4_0', 'q4_k'] as const) {
  test(`qwen2 (HF safetensors and F32 GGUF) --quantize ${type}: the bytes and exact logits of qwen-ts quantize --type ${type}`, () => {
    const want = load(quantized(QWEN2, type));
    for (const src of [QWEN2, path.join(QWEN2, 'model-f32.gguf')]) {
      const got = load(src, { quantize: type });
      assert.deepEqual(types(got.weights), types(want.weights), src);
      got.weights.forEach((w, i) => assert.ok(Buffer.from(w.w.bytes).equals(Buffer.from(want.weights[i]!.w.bytes)), `${src}: weight #${i} ${w.dtype} differs`));
      assert.deepEqual(got.logits, want.logits, src);
      assert.deepEqual(got.notes, []);
    }
    if (type !== 'q4_k')
      assert.ok(
        want.weights.every((w) => w.dtype === type.toUpperCase()),
        'every matrix takes the type',
      );
    else
      assert.ok(
        want.weights.every((w) => w.dtype === 'Q5_0'),
        "rows of 128 and 448 take llama-quantize's Q4_K fallback",
      );
  });
}

test('the conversion in pieces of rows (here one row at a time) gives the same bytes', () => {
  const whole = load(QWEN2, { quantize: 'q4_0' });
  const saved = WeightLoader.convertPiece;
  WeightLoader.convertPiece = 1;
  try {
    const pieces = load(QWEN2, { quantize: 'q4_0' });
    pieces.weights.forEach((w, i) => assert.ok(Buffer.from(w.w.bytes).equals(Buffer.from(whole.weights[i]!.w.bytes)), `weight #${i}`));
    assert.deepEqual(pieces.logits, whole.logits);
  } finally {
    WeightLoader.convertPiece = saved;
  }
});

test("qwen35 F32 GGUF --quantize q8_0 gives exactly the logits of llama.cpp's own Q8_0 file; F16 gives those of qwen-ts quantize", () => {
  const llama = load(path.join(QWEN35, 'model-q8_0.gguf'));
  const got = load(path.join(QWEN35, 'model-f32.gguf'), { quantize: 'q8_0' });
  assert.deepEqual(types(got.weights), types(llama.weights));
  assert.deepEqual(got.logits, llama.logits);
  const f16 = path.join(QWEN35, 'model-f16.gguf');
  assert.deepEqual(load(f16, { quantize: 'q8_0' }).logits, load(quantized(f16, 'q8_0')).logits);
});

test('qwen35 HF --quantize q8_0: the Q8_0 blocks of qwen-ts quantize, in the order the HF layout reads them', () => {
  // The GGUF conversion reorders the DeltaNet's value heads (rows, or whole column blocks of
  // out_proj); every matrix must hold the same blocks, and all others the same bytes.
  const want = load(quantized(QWEN35, 'q8_0'));
  const got = load(QWEN35, { quantize: 'q8_0' });
  assert.deepEqual(types(got.weights), types(want.weights));
  const blocks = (b: Uint8Array, n: number) => Array.from({ length: b.length / n }, (_, i) => Buffer.from(b.subarray(i * n, (i + 1) * n)).toString('hex')).sort();
  let same = 0;
  got.weights.forEach((w, i) => {
    const o = want.weights[i]!.w.bytes;
    if (Buffer.from(w.w.bytes).equals(Buffer.from(o))) same++;
    else assert.deepEqual(blocks(w.w.bytes, DTYPES.Q8_0.blockBytes), blocks(o, DTYPES.Q8_0.blockBytes), `weight #${i}`);
  });
  assert.ok(same >= got.weights.length / 2, `${same} of ${got.weights.length} identical`);
});

test('an already-quantised GGUF loads as stored, with a one-line note', () => {
  const file = path.join(QWEN35, 'model-q8_0.gguf');
  const plain = load(file);
  const q = load(file, { quantize: 'q4_0' });
  assert.deepEqual(q.logits, plain.logits);
  assert.equal(q.notes.length, 1);
  assert.match(q.notes[0]!, /model-q8_0\.gguf: --quantize q4_0 converts only F32\/F16\/BF16 matrices; \d+ Q8_0 matrices are already quantised and load as stored/);
  assert.throws(() => loadModel(QWEN2, { quantize: 'q3_k' as LoadQuantType }), /quantize must be one of q8_0, q4_0, q4_k, got 'q3_k'/);
});

test("CLI: logits --quantize prints the quantised file's logits; a bad type is a one-line error", () => {
  const a = cli('logits', '--backend', 'reference', '--model', QWEN2, '--quantize', 'Q8_0', '--tokens', IDS.join(','));
  const b = cli('logits', '--backend', 'reference', '--model', quantized(QWEN2, 'q8_0'), '--tokens', IDS.join(','));
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
  const bad = cli('logits', '--model', QWEN2, '--quantize', 'q3_k', '--tokens', '1');
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^qwen-ts logits: --quantize must be one of q8_0, q4_0, q4_k, got 'q3_k'\n$/);
  for (const cmd of ['run', 'serve', 'bench', 'logits']) assert.match(cli(cmd, '--help').out, /--quantize q8_0\|q4_0\|q4_k/, cmd);
});
