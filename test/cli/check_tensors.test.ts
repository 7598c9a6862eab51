// --check-tensors on the commands that load a model (run, serve, bench, logits): a NaN block scale
// is one line on stderr naming file, tensor, block and field, exit 1; without the flag the file
// loads as before; a clean file passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../../src/formats/gguf.js';
import { fixtureDir, ROOT, tmpDir } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const CLEAN = path.join(fixtureDir('models/qwen3-tiny-k256'), 'model-q5_k_s-pure.gguf'); // Q5_K matrices, tokenizer metadata
const work = tmpDir();

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A copy of the clean file with block 17 of blk.0.ffn_down.weight's scale d set to NaN (f16 0x7e00). */
function badFile(): string {
  const g = openGguf(CLEAN);
  const info = g.tensors.get('blk.0.ffn_down.weight')!;
  g.close();
  assert.equal(info.dtype, 'Q5_K');
  const bytes = fs.readFileSync(CLEAN);
  bytes.writeUInt16LE(0x7e00, info.offset + 17 * 176); // block_q5_K: d first, 176 bytes a block
  const out = path.join(work, 'bad-scale.gguf');
  fs.writeFileSync(out, bytes);
  return out;
}
const BAD = badFile();
const MESSAGE = `${BAD}: tensor 'blk.0.ffn_down.weight': block 17's scale d is NaN (--check-tensors)`;

test('run, serve, bench and logits with --check-tensors: one line naming tensor, block and field, exit 1', () => {
  const runs = {
    logits: ['logits', '--model', BAD, '--tokens', '1,2,3', '--check-tensors'],
    bench: ['bench', '--model', BAD, '--prompt-tokens', '4', '--gen-tokens', '1', '--check-tensors'],
    run: ['run', BAD, 'Hello', '--max-tokens', '1', '--check-tensors'],
    serve: ['serve', BAD, '--port', '0', '--check-tensors'], // fails while loading, before it listens
  };
  for (const [name, args] of Object.entries(runs)) {
    const r = cli(...args);
    assert.equal(r.code, 1, `${name}: ${r.err}`);
    assert.equal(r.out, '', name);
    const lines = r.err.split('\n').filter((l) => l.trim() && !/^loading|^\r/.test(l));
    assert.deepEqual(lines.slice(-1), [`qwen-ts ${name}: ${MESSAGE}`], `${name}: ${r.err}`);
    assert.doesNotMatch(r.err, /^\s+at /m, `${name}: no stack trace`);
  }
});

/** Exit 0 with finite logits, or exit 1 with the engine's non-finite-logit line. */
function finiteOrNanError(r: ReturnType<typeof cli>): void {
  if (r.code === 0) assert.ok((JSON.parse(r.out).logits as number[]).every(Number.isFinite));
  else {
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /non-finite logit/);
  }
}

test('without --check-tensors the file loads as before: logits, or the non-finite-logit error (reference backend)', () => {
  finiteOrNanError(cli('logits', '--model', BAD, '--tokens', '1,2,3', '--backend', 'reference'));
});

// A NaN activation once made the wasm K-quant products (quant_q8k) read past the block: now NaN logits.
test('without --check-tensors on the wasm backend: the non-finite-logit error', () => {
  finiteOrNanError(cli('logits', '--model', BAD, '--tokens', '1,2,3'));
});

test('a clean file passes --check-tensors with the same logits; the help of each command names the flag', () => {
  const a = cli('logits', '--model', CLEAN, '--tokens', '1,2,3', '--check-tensors');
  const b = cli('logits', '--model', CLEAN, '--tokens', '1,2,3');
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
  assert.ok((JSON.parse(a.out).logits as number[]).every(Number.isFinite));
  for (const cmd of ['run', 'serve', 'bench', 'logits']) assert.match(cli(cmd, '--help').out, /--check-tensors/, cmd);
});
