// The CLI as a user runs it: JSON on stdout, one-line errors on stderr, exit codes; and
// `quantize` output checked against the GGUF file llama.cpp's own converter wrote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../../src/formats/gguf.js';
import { loadModel } from '../../src/models/load.js';
import { argmax, compare, fixtureDir, readF32, ROOT, tmpDir } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const TINY = fixtureDir('models/qwen2-tiny-tied');
const REF = JSON.parse(fs.readFileSync(path.join(TINY, 'reference.json'), 'utf8'));
const work = tmpDir();

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function assertUserError(r: ReturnType<typeof cli>, re: RegExp) {
  assert.equal(r.code, 1, r.err);
  assert.match(r.err.split('\n')[0]!, re); // the first line says what is wrong (usage may follow)
  assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace for the user');
}

test('logits prints the last position (and with --all every position) as llama.cpp computes them', () => {
  const c = REF.cases[0];
  const expected = readF32(path.join(TINY, c.prefill_logits_file.path));
  const V = 320,
    T = c.prompt_ids.length;
  const r = cli('logits', '--model', TINY, '--tokens', c.prompt_ids.join(','));
  assert.equal(r.code, 0, r.err);
  const last = JSON.parse(r.out).logits as number[];
  assert.equal(last.length, V);
  assert.ok(compare(last, expected.subarray((T - 1) * V), 1e-3, 1e-4).ok);
  const all = cli('logits', '--model', path.join(TINY, 'model-f32.gguf'), '--tokens', c.prompt_ids.join(','), '--all');
  const rows = JSON.parse(all.out).logits as number[][];
  assert.equal(rows.length, T);
  assert.ok(compare(rows.flat(), expected, 1e-3, 1e-4).ok);
});

test('logits: user errors are one line, exit 1, no stack', () => {
  assertUserError(cli('logits', '--tokens', '1'), /--model is required/);
  assertUserError(cli('logits', '--model', TINY, '--tokens', '1,x'), /--tokens must be a comma-separated list/);
  assertUserError(cli('logits', '--model', TINY, '--tokens', '1,320'), /token id 320 .* out of range/);
  assertUserError(cli('logits', '--model', path.join(work, 'nothing'), '--tokens', '1'), /no such (file or folder|model folder or file)/);
  assertUserError(cli('logits', '--model', TINY, '--tokens', '1', '--bogus'), /bogus/);
  const cut = path.join(work, 'cut.gguf');
  fs.writeFileSync(cut, fs.readFileSync(path.join(TINY, 'model-f32.gguf')).subarray(0, 200_000));
  assertUserError(cli('logits', '--model', cut, '--tokens', '1'), new RegExp(`${cut}: tensor '[^']+' .* past the end of the file`));
  const r = cli('frobnicate');
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command 'frobnicate'/);
});

test("quantize --type f32 of the HF folder reproduces llama.cpp's conversion: metadata, vocabulary, tensors, logits", () => {
  const out = path.join(work, 'f32.gguf');
  const r = cli('quantize', TINY, out, '--type', 'f32');
  assert.equal(r.code, 0, r.err);
  const ours = openGguf(out),
    theirs = openGguf(path.join(TINY, 'model-f32.gguf'));
  try {
    for (const [k, v] of theirs.metadata) {
      if (k === 'general.name') continue;
      assert.deepEqual(ours.metadata.get(k), v, `metadata ${k}`);
      assert.deepEqual(ours.metadataTypes.get(k), theirs.metadataTypes.get(k), `type of ${k}`);
    }
    assert.deepEqual([...ours.tensors.keys()].sort(), [...theirs.tensors.keys()].sort());
    for (const t of theirs.tensorList) {
      const a = new Uint8Array(t.byteLength),
        b = new Uint8Array(t.byteLength);
      theirs.readInto(t.name, a);
      ours.readInto(t.name, b);
      assert.deepEqual(b, a, t.name);
    }
  } finally {
    ours.close();
    theirs.close();
  }
});

test('quantize q8_0 / q4_0 / f16: matrices in the chosen type, vectors F32; logits within the stated tolerance of F32', () => {
  const f32 = loadModel(TINY);
  const ids = REF.cases[1].prompt_ids as number[];
  const V = 320,
    T = ids.length;
  const batch = ids.map((token, pos) => ({ token, pos, seq: 0, logits: true }));
  const base = f32.forward(batch, [f32.newCache(T)]);
  // Tolerances on this 2-layer random model (logits up to |37|): relative RMS of the logit error
  // and the share of positions whose argmax is unchanged. Measured: q8_0 0.039 / 98%, f16 ~0 / 100%.
  const limits = { f16: { rel: 1e-3, agree: 1 }, q8_0: { rel: 0.06, agree: 0.95 }, q4_0: { rel: 0.7, agree: 0.4 } };
  for (const [type, lim] of Object.entries(limits)) {
    const out = path.join(work, `${type}.gguf`);
    assert.equal(cli('quantize', TINY, out, '--type', type).code, 0);
    const g = openGguf(out);
    // llama.cpp's q4_0 mix gives the tied embedding (the output) Q6_K, whose 64-wide rows fall back to Q8_0
    const want = (name: string) => (type === 'q4_0' && name === 'token_embd.weight' ? 'Q8_0' : type.toUpperCase());
    for (const t of g.tensorList) assert.equal(t.dtype, t.shape.length === 1 ? 'F32' : want(t.name), t.name);
    g.close();
    const m = loadModel(out);
    const l = m.forward(batch, [m.newCache(T)]);
    let num = 0,
      den = 0,
      agree = 0;
    for (let i = 0; i < l.length; i++) {
      num += (l[i]! - base[i]!) ** 2;
      den += base[i]! ** 2;
    }
    for (let p = 0; p < T; p++) if (argmax(l, p * V, V) === argmax(base, p * V, V)) agree++;
    const rel = Math.sqrt(num / den);
    assert.ok(rel <= lim.rel, `${type}: relative RMS error ${rel}`);
    assert.ok(agree / T >= lim.agree, `${type}: argmax agrees at ${agree}/${T}`);
  }
});

test('quantize: bad arguments are user errors', () => {
  assertUserError(cli('quantize', TINY, path.join(work, 'x.gguf'), '--type', 'q3_k'), /--type 'q3_k' is not one of/);
  assertUserError(cli('quantize', TINY), /expected an input model and an output file/);
});

test('Qwen3.5: logits (HF folder and GGUF) as llama.cpp computes them; bench runs', () => {
  const dir = fixtureDir('models/qwen35-tiny');
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')).cases[1];
  const expected = readF32(path.join(dir, c.prefill_logits_file.path));
  const V = expected.length / c.prompt_ids.length;
  for (const model of [dir, path.join(dir, 'model-f32.gguf')]) {
    const r = cli('logits', '--model', model, '--tokens', c.prompt_ids.join(','), '--all');
    assert.equal(r.code, 0, r.err);
    const rows = JSON.parse(r.out).logits as number[][];
    assert.equal(rows.length, c.prompt_ids.length);
    assert.ok(compare(rows.flat(), expected, 1e-3, 1e-4).ok, model);
    assert.equal(rows[0]!.length, V);
  }
  const b = cli('bench', '--model', path.join(dir, 'model-q8_0.gguf'), '--prompt-tokens', '40', '--gen-tokens', '4', '--threads', '1', '--json', '--profile');
  assert.equal(b.code, 0, b.err);
  const res = JSON.parse(b.out);
  assert.ok(res.prefill_tps > 0 && res.decode_tps > 0, b.out);
  // --profile: per phase, the time in each backend op (3 DeltaNet layers: 3 deltaNet calls a pass)
  assert.match(b.err, /prefill 40 tokens \(one batch\): [\d.]+ ms in backend ops/);
  assert.match(b.err, /decode 4 tokens: [\d.]+ ms in backend ops/);
  assert.match(b.err, /deltaNet +[\d.]+ ms +[\d.]+% +3 calls/);
  assert.match(b.err, /deltaNet +[\d.]+ ms +[\d.]+% +12 calls/);
});

test('template: --thinking and --no-thinking together are a user error', () => {
  const msgs = path.join(work, 'hi.json');
  fs.writeFileSync(msgs, JSON.stringify([{ role: 'user', content: 'Hi' }]));
  assertUserError(cli('template', '--model', TINY, '--messages', msgs, '--thinking', '--no-thinking'), /--thinking and --no-thinking contradict each other/);
});

test('quantize a Qwen3.5 GGUF: F32 -> Q8_0 keeps its qwen35 metadata and the conv in F32; logits as llama.cpp on its own Q8_0 file', () => {
  const dir = fixtureDir('models/qwen35-tiny');
  const out = path.join(work, 'q35-q8_0.gguf');
  const r = cli('quantize', path.join(dir, 'model-f32.gguf'), out, '--type', 'q8_0');
  assert.equal(r.code, 0, r.err);
  const g = openGguf(out),
    src = openGguf(path.join(dir, 'model-f32.gguf'));
  try {
    assert.equal(g.metadata.get('general.architecture'), 'qwen35');
    for (const [k, v] of src.metadata) if (k.startsWith('qwen35.')) assert.deepEqual(g.metadata.get(k), v, k);
    assert.equal(g.tensors.get('blk.0.ssm_conv1d.weight')!.dtype, 'F32');
    assert.equal(g.tensors.get('blk.0.ssm_a')!.dtype, 'F32');
    assert.equal(g.tensors.get('blk.0.attn_qkv.weight')!.dtype, 'Q8_0');
    assert.equal(g.tensors.size, src.tensors.size, 'the MTP block is kept');
    // the fixture's Q8_0 file (the one llama.cpp's reference logits come from) has the same bytes
    const ref = openGguf(path.join(dir, 'model-q8_0.gguf'));
    for (const t of g.tensors.values()) {
      const u = ref.tensors.get(t.name)!;
      const a = new Uint8Array(t.byteLength),
        b = new Uint8Array(u.byteLength);
      g.readInto(t.name, a);
      ref.readInto(t.name, b);
      assert.equal(t.dtype, u.dtype, t.name);
      assert.ok(Buffer.from(a).equals(Buffer.from(b)), t.name);
    }
    ref.close();
  } finally {
    g.close();
    src.close();
  }
  const m = loadModel(out, { onNote: () => {} });
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')).cases[2];
  const want = readF32(path.join(dir, c.prefill_logits_q8_0_file.path));
  const l = m.forward(
    c.prompt_ids.map((token: number, pos: number) => ({ token, pos, seq: 0, logits: true })),
    [m.newCache(64)],
  );
  // tolerance as test/models/qwen35.test.ts (llama.cpp rounds the activations too): max abs 0.1
  assert.ok(compare(l, want, 0.1).ok, `max abs diff ${compare(l, want, 0.1).maxAbs}`);
});

test("quantize a Qwen3.5 HF folder: the tensors of llama.cpp's conversion (norms 1 + w, A = -exp(A_log), tiled value heads, conv [C, K]), its metadata, no vision or MTP", () => {
  const dir = fixtureDir('models/qwen35-tiny'); // HF multimodal layout, 2 key / 4 value heads; its GGUF is the original
  const out = path.join(work, 'q35-from-hf.gguf');
  const r = cli('quantize', dir, out, '--type', 'f32');
  assert.equal(r.code, 0, r.err);
  const g = openGguf(out),
    ref = openGguf(path.join(dir, 'model-f32.gguf'));
  try {
    const mtp = [...ref.tensors.keys()].filter((n) => n.startsWith('blk.4.')); // the MTP block is not written
    assert.equal(g.tensors.size, ref.tensors.size - mtp.length);
    for (const t of g.tensors.values()) {
      const u = ref.tensors.get(t.name);
      assert.ok(u, `${t.name} is a tensor of llama.cpp's file`);
      assert.deepEqual(t.shape, u.shape, t.name);
      const a = new Float32Array(t.byteLength / 4),
        b = new Float32Array(u.byteLength / 4);
      g.readInto(t.name, new Uint8Array(a.buffer));
      ref.readInto(t.name, new Uint8Array(b.buffer));
      assert.ok(compare(a, b, 2e-6).ok, `${t.name}: max diff ${compare(a, b, 2e-6).maxAbs}`); // 1 + (w - 1) and -exp(log(-a)) round
    }
    for (const [k, v] of ref.metadata) {
      if (!k.startsWith('qwen35.') || k === 'qwen35.nextn_predict_layers') continue;
      const want = k === 'qwen35.block_count' ? 4 : k === 'qwen35.attention.recurrent_layers' ? (v as boolean[]).slice(0, 4) : v;
      assert.deepEqual(g.metadata.get(k), want, k);
    }
  } finally {
    g.close();
    ref.close();
  }
  const m = loadModel(out, { onNote: () => {} });
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')).cases[3];
  const l = m.forward(
    c.prompt_ids.map((token: number, pos: number) => ({ token, pos, seq: 0, logits: true })),
    [m.newCache(64)],
  );
  assert.ok(compare(l, readF32(path.join(dir, c.prefill_logits_file.path)), 1e-3, 1e-4).ok, "llama.cpp's logits");
});
