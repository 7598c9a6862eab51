// Hostile model files, each as the attack was found: the CLI must exit 1 with one clean line
// (no terminal escapes, bounded length) in bounded time, never load them as different weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf, type GgufKV, type GgufFile } from '../../src/formats/gguf.js';
import { writeGguf } from '../../src/formats/gguf_writer.js';
import { fixtureDir, ROOT, tmpDir } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const TINY = fixtureDir('models/qwen2-tiny-tied');
const GGUF = path.join(TINY, 'model-f32.gguf');
const work = tmpDir();

/** `qwen-ts logits` on `model`: exit code, stderr, wall time. */
function logits(model: string) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'logits', '--model', model, '--tokens', '1,2,3', '--threads', '1'], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, ms: Date.now() - t0 };
}

/** Exit 1, one line on stderr matching `re`, no control characters, at most ~2 KB. */
function assertCleanError(r: ReturnType<typeof logits>, re: RegExp) {
  assert.equal(r.code, 1, `exit code (stderr: ${r.err.slice(0, 500)})`);
  assert.equal(r.out, '', 'nothing on stdout');
  const lines = r.err.split('\n');
  assert.equal(lines.length, 2, `one line on stderr, got ${lines.length}`);
  assert.equal(lines[1], '');
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(lines[0]!, /[\u0000-\u001f\u007f-\u009f]/, 'no control characters');
  assert.ok(lines[0]!.length < 2500, `a short line, got ${lines[0]!.length} characters`);
  assert.match(lines[0]!, re);
}

// --- GGUF: byte positions of a tensor's info entry, found from its name in the header ---
function offsetField(bytes: Buffer, g: GgufFile, name: string): number {
  const nameBytes = Buffer.from(name);
  let at = -1;
  for (let i = bytes.indexOf(nameBytes); i >= 0; i = bytes.indexOf(nameBytes, i + 1)) {
    if (i >= 8 && bytes.readBigUInt64LE(i - 8) === BigInt(nameBytes.length) && i < g.dataOffset) at = i;
  }
  assert.ok(at > 0, `tensor info of ${name} found`);
  const nd = bytes.readUInt32LE(at + nameBytes.length);
  return at + nameBytes.length + 4 + 8 * nd + 4;
}

function editGguf(name: string, edit: (b: Buffer, g: GgufFile) => void): string {
  const bytes = fs.readFileSync(GGUF);
  const g = openGguf(GGUF);
  try {
    edit(bytes, g);
  } finally {
    g.close();
  }
  const f = path.join(work, name);
  fs.writeFileSync(f, bytes);
  return f;
}

/** The fixture GGUF rewritten with edited metadata. */
function ggufWithMetadata(name: string, edit: (kv: GgufKV[]) => GgufKV[]): string {
  const g = openGguf(GGUF);
  const kv: GgufKV[] = [...g.metadata].map(([key, value]) => ({ key, value, type: g.metadataTypes.get(key)! }));
  const tensors = g.tensorList.map((t) => {
    const data = new Uint8Array(t.byteLength);
    g.readInto(t.name, data);
    return { name: t.name, dtype: t.dtype, shape: t.shape, data };
  });
  g.close();
  const f = path.join(work, name);
  writeGguf(f, { metadata: edit(kv), tensors });
  return f;
}

test('the fixture itself loads (the attacks below differ from it in one field)', () => {
  const r = logits(GGUF);
  assert.equal(r.code, 0, r.err);
  assert.ok((JSON.parse(r.out).logits as number[]).every(Number.isFinite));
});

test("GGUF: token_embd.weight moved onto another tensor's bytes is refused as overlapping", () => {
  const f = editGguf('overlap.gguf', (b, g) => {
    const other = g.tensorList.find((t) => t.name !== 'token_embd.weight' && t.byteLength >= g.tensors.get('token_embd.weight')!.byteLength / 4)!;
    b.writeBigUInt64LE(BigInt(other.offset - g.dataOffset), offsetField(b, g, 'token_embd.weight'));
  });
  assertCleanError(logits(f), /tensor 'token_embd\.weight' .*overlaps tensor|overlaps tensor 'token_embd\.weight'/);
});

test('GGUF: a tensor offset with one flipped low bit is refused as misaligned', () => {
  const f = editGguf('flip.gguf', (b, g) => {
    const t = g.tensorList[3]!;
    const at = offsetField(b, g, t.name);
    b.writeBigUInt64LE(b.readBigUInt64LE(at) ^ 1n, at);
  });
  assertCleanError(logits(f), /offset \d+ is not aligned to 32/);
});

test('GGUF: a 2 MB architecture string full of terminal escapes prints one short, escaped line', () => {
  const evil = '\u001b]0;pwned\u0007\u001b[2J\u001b[32mverified OK\u001b[0m\n'.repeat(60_000);
  const f = ggufWithMetadata('escapes.gguf', (kv) => kv.map((e) => (e.key === 'general.architecture' ? { ...e, value: evil } : e)));
  const r = logits(f);
  assertCleanError(r, /metadata 'general\.architecture' is '\\x1b\]0;pwned\\x07.*…/);
  assert.doesNotMatch(r.err, /\u001b/);
});

test('GGUF: a 2 MB metadata key with escapes and a bad value type prints one short, escaped line', () => {
  const f = editGguf('evil-key.gguf', () => {});
  // a new first KV pair: key of 2 MB, value type 99 (unknown)
  const b = fs.readFileSync(f);
  const key = Buffer.from('\u001b[2J\u001b[31mERROR\u001b[0m fake\r\n'.repeat(100_000));
  const entry = Buffer.alloc(8 + key.length + 4);
  entry.writeBigUInt64LE(BigInt(key.length), 0);
  key.copy(entry, 8);
  entry.writeUInt32LE(99, 8 + key.length);
  const nKv = b.readBigUInt64LE(16);
  b.writeBigUInt64LE(nKv + 1n, 16);
  fs.writeFileSync(f, Buffer.concat([b.subarray(0, 24), entry, b.subarray(24)]));
  const r = logits(f);
  assertCleanError(r, /unknown GGUF value type 99/);
  assert.doesNotMatch(r.err, /\u001b|\r/);
});

test('GGUF: context_length 0xFFFFFFFF is an error, not a cache size', () => {
  const f = ggufWithMetadata('ctx.gguf', (kv) => kv.map((e) => (e.key === 'qwen2.context_length' ? { ...e, value: 0xffffffff } : e)));
  assertCleanError(logits(f), /metadata 'qwen2\.context_length' = 4294967295 is not a plausible context length/);
});

test('GGUF: a float where a token id belongs is an error', () => {
  const f = ggufWithMetadata('float-id.gguf', (kv) => kv.map((e) => (e.key === 'tokenizer.ggml.eos_token_id' ? { key: e.key, type: 'f32' as const, value: 2 } : e)));
  assertCleanError(logits(f), /metadata 'tokenizer\.ggml\.eos_token_id' must be an integer, but the file stores it as f32/);
});

// --- safetensors: a model folder whose header is edited ---
function stFolder(name: string, edit: (h: Record<string, any>) => void): string {
  const d = path.join(work, name);
  fs.mkdirSync(d, { recursive: true });
  for (const f of fs.readdirSync(TINY)) if (f.endsWith('.json')) fs.copyFileSync(path.join(TINY, f), path.join(d, f));
  const b = fs.readFileSync(path.join(TINY, 'model.safetensors'));
  const n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString());
  edit(h);
  const hb = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.concat([len, hb, b.subarray(8 + n)]));
  return d;
}

test("safetensors: data_offsets pointing at another tensor's bytes are refused", () => {
  const d = stFolder('st-overlap', (h) => {
    h['model.layers.0.input_layernorm.weight'].data_offsets = [...h['model.layers.1.input_layernorm.weight'].data_offsets];
  });
  assertCleanError(logits(d), /model\.safetensors: tensor '[^']+' starts at data byte \d+ and overlaps tensor/);
});

test('safetensors: data_offsets shifted by one byte are refused', () => {
  const d = stFolder('st-shift', (h) => {
    const t = h['model.layers.0.input_layernorm.weight'];
    t.data_offsets = t.data_offsets.map((x: number) => x + 1);
  });
  assertCleanError(logits(d), /model\.safetensors: tensor '[^']+' starts at data byte \d+ and overlaps tensor 'model\.layers\.0\.input_layernorm\.weight'/);
});

test('safetensors: a dtype that is not a string, and __metadata__ that is not strings, are refused', () => {
  const d1 = stFolder('st-dtype', (h) => {
    h['model.norm.weight'].dtype = { BF16: true };
  });
  assertCleanError(logits(d1), /tensor 'model\.norm\.weight' has dtype '\{"BF16":true\}', which is not a string/);
  const d2 = stFolder('st-meta', (h) => {
    h.__metadata__ = { format: 5 };
  });
  assertCleanError(logits(d2), /__metadata__ entry 'format' must be a string, got 5/);
});

test('safetensors: a 99 MB header of 1.26 M entries is refused up front, in bounded time and memory', () => {
  const d = path.join(work, 'st-huge');
  fs.mkdirSync(d, { recursive: true });
  for (const f of fs.readdirSync(TINY)) if (f.endsWith('.json')) fs.copyFileSync(path.join(TINY, f), path.join(d, f));
  const entry = (i: number) => `"model.layers.${i.toString(36).padStart(12, '0')}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},`;
  const n = 1_260_000;
  const parts: string[] = ['{'];
  for (let i = 0; i < n; i++) parts.push(entry(i));
  parts.push('"__metadata__":{}}');
  const header = Buffer.from(parts.join(''));
  assert.ok(header.length > 90e6 && header.length < 100e6, `header is ${header.length} bytes`);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.concat([len, header]));
  // in a child that reports its peak memory: before the cap, this took 1.15 GB and 4.8 s
  const script = `import { openSafetensors } from ${JSON.stringify(path.join(ROOT, 'dist/src/formats/safetensors.js'))};
    try { openSafetensors(${JSON.stringify(d)}); console.log('opened'); } catch (e) { console.log(e.message.slice(0, 300)); }
    console.log(Math.round(process.resourceUsage().maxRSS / 1024));`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  const ms = Date.now() - t0;
  const [msg, rss] = r.stdout.trim().split('\n');
  assert.match(msg!, /header describes 1260000 tensors, more than the 262144 a model file has/);
  assert.ok(Number(rss) < 700, `peak RSS ${rss} MiB`);
  assert.ok(ms < 20_000, `refused in ${ms} ms`);
  assertCleanError(logits(d), /header describes 1260000 tensors/);
  fs.rmSync(d, { recursive: true, force: true });
});

test('a flipped exponent bit in a weight gives a clean error, not NaN logits', () => {
  const f = editGguf('nan.gguf', (b, g) => {
    const norm = g.tensors.get('output_norm.weight')!; // F32: set the first value to NaN
    b.writeUInt32LE(0x7fc00000, norm.offset);
  });
  assertCleanError(logits(f), /non-finite logit \(NaN\)/);
});
