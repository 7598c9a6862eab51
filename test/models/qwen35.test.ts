// Qwen3.5 beyond the shared parity tests (parity.test.ts runs prefill / decode / chunks / two
// sequences on these fixtures too): four sequences of different lengths decoded in one batch,
// F16 and Q8_0 files against llama.cpp's logits on those files, and the rules of a recurrent
// state (no rewinding, restart from 0, a failed pass leaves the sequence unusable).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import type { BatchEntry } from '../../src/models/kv_cache.js';
import { argmax, compare, fixtureDir, PARITY_ATOL, PARITY_RTOL, readF32, relErr, type RefCase } from '../helpers.js';
import { REFERENCE, WASM_X3, loadOn } from './parity_backends.js';

const ATOL = PARITY_ATOL,
  RTOL = PARITY_RTOL;

interface Case extends RefCase {
  prefill_logits_f16_file?: { path: string };
  prefill_logits_q8_0_file?: { path: string };
}
const cases = (dir: string): Case[] => JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')).cases;

const BACKENDS = [REFERENCE, WASM_X3];
const load = loadOn;

for (const [bn, backend] of BACKENDS)
  for (const name of ['qwen35-tiny', 'qwen35-tiny-tied']) {
    const dir = fixtureDir(`models/${name}`);
    for (const src of [dir, path.join(dir, 'model-f32.gguf')]) {
      const label = `${bn}: ${name} ${path.basename(src)}`;
      test(`${label}: four sequences of different lengths prefill and decode together in one batch`, () => {
        const m = load(src, backend);
        const V = m.config.vocab_size;
        const cs = cases(dir);
        assert.equal(cs.length, 4);
        const want = cs.map((c) => readF32(path.join(dir, c.incremental_logits_file.path)));
        const ids = cs.map((c) => [...c.prompt_ids, ...c.greedy_generated_ids]);
        const caches = cs.map(() => m.newCache(128));
        const fed = cs.map(() => 0);
        // each step: every sequence adds up to 3 + s tokens (so lengths and phases differ), rows
        // interleaved across sequences
        for (let step = 0; fed.some((f, s) => f < ids[s]!.length); step++) {
          const batch: BatchEntry[] = [];
          for (let k = 0; k < 6; k++)
            cs.forEach((_, s) => {
              if (k < (step === 0 ? 3 + 2 * s : 1) && fed[s]! < ids[s]!.length) batch.push({ token: ids[s]![fed[s]!]!, pos: fed[s]!++, seq: s, logits: true });
            });
          const l = m.forward(batch, caches);
          batch.forEach((e, r) => {
            const res = compare(l.subarray(r * V, (r + 1) * V), want[e.seq]!.subarray(e.pos * V, (e.pos + 1) * V), ATOL, RTOL);
            assert.ok(res.ok, `seq ${e.seq} pos ${e.pos}: max abs diff ${res.maxAbs}`);
          });
        }
      });
    }
  }

// F16 / Q8_0: llama.cpp also rounds the activations inside its products (to f16; to q8_0 blocks),
// so logits differ more than for F32. Measured on these files (logits of size ~1): F16 max abs diff
// 1.1e-3 on both backends (the fixture's float64 check of the same weights: 6.4e-4); Q8_0 relative
// RMS 0.021-0.033 (reference backend, f32 activations, as the fixture's float64 check) and
// 0.020-0.026 (wasm, int8 activations rounded at other points than ggml's), max abs 0.046. Bounds:
// F16 atol 3e-3; Q8_0 relative RMS 0.06 as for the other Q8_0 tests (test/cli/cli.test.ts) and
// max abs 0.1. The greedy choice must agree wherever llama.cpp's top two are further apart.
for (const [bn, backend] of BACKENDS)
  for (const [type, key, atol, relRms] of [
    ['f16', 'prefill_logits_f16_file', 3e-3, 0.01],
    ['q8_0', 'prefill_logits_q8_0_file', 0.1, 0.06],
  ] as const) {
    test(`${bn}: qwen35-tiny ${type.toUpperCase()} GGUF: logits at every position agree with llama.cpp on the same file (one batch, token by token, chunks of 5)`, () => {
      const dir = fixtureDir('models/qwen35-tiny');
      const m = load(path.join(dir, `model-${type}.gguf`), backend);
      const V = m.config.vocab_size;
      for (const c of cases(dir)) {
        const want = readF32(path.join(dir, c[key]!.path));
        const l = m.forward(
          c.prompt_ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
          [m.newCache(64)],
        );
        const r = compare(l, want, atol, 0);
        assert.ok(r.ok, `case ${c.name}: max abs diff ${r.maxAbs}`);
        assert.ok(relErr(l, want) <= relRms, `case ${c.name}: relative RMS ${relErr(l, want)}`);
        for (let p = 0; p < c.prompt_ids.length; p++) {
          const row = want.subarray(p * V, (p + 1) * V);
          const sorted = Float32Array.from(row).sort().reverse();
          if (sorted[0]! - sorted[1]! > atol) assert.equal(argmax(l, p * V, V), argmax(row), `case ${c.name} position ${p}`);
        }
        // token by token through the caches, and in chunks of 5, against the same llama.cpp rows
        const one = m.newCache(64),
          five = m.newCache(64);
        c.prompt_ids.forEach((token, pos) => {
          const r = m.forward([{ token, pos, seq: 0, logits: true }], [one]);
          assert.ok(compare(r, want.subarray(pos * V, (pos + 1) * V), atol, 0).ok, `case ${c.name} token ${pos}`);
        });
        for (let s0 = 0; s0 < c.prompt_ids.length; s0 += 5) {
          const chunk = c.prompt_ids.slice(s0, s0 + 5).map((token, i) => ({ token, pos: s0 + i, seq: 0, logits: true }));
          const r = m.forward(chunk, [five]);
          assert.ok(compare(r, want.subarray(s0 * V, (s0 + chunk.length) * V), atol, 0).ok, `case ${c.name} chunk at ${s0}`);
          assert.ok(relErr(r, want.subarray(s0 * V, (s0 + chunk.length) * V)) <= relRms, `case ${c.name} chunk at ${s0}: relative RMS`);
        }
      }
    });
  }

test('a recurrent sequence cannot be rewound, but can start again from position 0', () => {
  const dir = fixtureDir('models/qwen35-tiny');
  const m = load(path.join(dir, 'model-f32.gguf'), () => new ReferenceBackend());
  const V = m.config.vocab_size;
  const [a, b] = cases(dir) as [Case, Case];
  const cache = m.newCache(64);
  m.forward(
    a.prompt_ids.map((token, pos) => ({ token, pos, seq: 0, logits: false })),
    [cache],
  );
  assert.throws(() => m.forward([{ token: 1, pos: 2, seq: 0, logits: true }], [cache]), /cannot be rewound/);
  assert.throws(() => cache.truncate(2), /cannot rewind/);
  // starting over at 0 resets the states: the same logits as a fresh sequence
  const l = m.forward(
    b.prompt_ids.map((token, pos) => ({ token, pos, seq: 0, logits: true })),
    [cache],
  );
  assert.ok(compare(l, readF32(path.join(dir, b.prefill_logits_file.path)), ATOL, RTOL).ok);
  assert.equal(cache.length, b.prompt_ids.length);
  assert.equal(l.length, b.prompt_ids.length * V);
});

test('a sequence holds recurrent-state memory only once it is evaluated, and gives it back', () => {
  const dir = fixtureDir('models/qwen35-tiny');
  const m = load(path.join(dir, 'model-f32.gguf'), () => new ReferenceBackend());
  const cache = m.newCache(64); // e.g. a request waiting its turn in the scheduler
  assert.equal(cache.state[0]!.length + cache.conv[0]!.length, 0);
  const first = Float32Array.from(m.forward([{ token: 1, pos: 0, seq: 0, logits: true }], [cache]));
  assert.equal(cache.state[0]!.length, 4 * 32 * 32); // nv x dk x dv
  assert.equal(cache.conv[0]!.length, 3 * (2 * 2 * 32 + 4 * 32)); // (K-1) x C
  assert.equal(cache.state[3]!.length, 0, 'the attention layer keeps keys and values instead');
  cache.release();
  assert.equal(cache.state[0]!.length, 0);
  const again = m.forward([{ token: 1, pos: 0, seq: 0, logits: true }], [cache]);
  assert.deepEqual(Array.from(again), Array.from(first), 'a released sequence starts again from zeroed states');
});

test('a pass that fails half-way leaves its recurrent sequences unusable, with a clear error', () => {
  const dir = fixtureDir('models/qwen35-tiny');
  const m = load(path.join(dir, 'model-f32.gguf'), () => new ReferenceBackend());
  const [a] = cases(dir) as [Case];
  const cache = m.newCache(64);
  m.forward(
    a.prompt_ids.map((token, pos) => ({ token, pos, seq: 0, logits: false })),
    [cache],
  );
  const n = a.prompt_ids.length;
  m.trace = (name, layer) => {
    if (name === 'l_out' && layer === 1) throw new Error('injected fault');
  };
  assert.throws(() => m.forward([{ token: 3, pos: n, seq: 0, logits: true }], [cache]), /injected fault/);
  m.trace = undefined;
  assert.equal(cache.length, n, 'the failed position is not committed');
  assert.throws(() => m.forward([{ token: 3, pos: n, seq: 0, logits: true }], [cache]), /half-updated/);
});

test("Qwen3.5 HF folder: a vision tower that does not load is one note (this fixture's visual.* tensors do not match its vision_config), text works; MTP tensors are not unknown tensors", () => {
  const notes: string[] = [];
  const b = new ReferenceBackend();
  const m = loadModel(fixtureDir('models/qwen35-tiny'), { backend: b, onNote: (n) => notes.push(n) });
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, /the vision tower .* did not load \(.*model\.visual\.patch_embed\.proj\.weight.*\): the model runs without images/);
  assert.equal(m.vision, undefined);
  assert.equal(m.config.mtp_num_hidden_layers, 1);
  assert.equal(m.config.num_hidden_layers, 4);
  const g = loadModel(path.join(fixtureDir('models/qwen35-tiny'), 'model-f32.gguf'), { backend: b, onNote: (n) => notes.push(n) });
  assert.equal(g.config.num_hidden_layers, 4, 'GGUF block_count 5 includes the MTP block');
  assert.deepEqual(g.config.layer_types, ['linear_attention', 'linear_attention', 'linear_attention', 'full_attention']);
});

test('a failed first pass, then release() or truncate(0), lets the sequence start again; a batch cannot restart a sequence twice', () => {
  const dir = fixtureDir('models/qwen35-tiny');
  const m = load(path.join(dir, 'model-f32.gguf'), () => new ReferenceBackend());
  const fresh = Array.from(m.forward([{ token: 5, pos: 0, seq: 0, logits: true }], [m.newCache(64)]));
  for (const recover of ['release', 'truncate'] as const) {
    const cache = m.newCache(64);
    m.trace = () => {
      throw new Error('injected fault');
    };
    assert.throws(() => m.forward([{ token: 5, pos: 0, seq: 0, logits: true }], [cache]), /injected fault/);
    m.trace = undefined;
    if (recover === 'release') cache.release();
    else cache.truncate(0);
    assert.deepEqual(Array.from(m.forward([{ token: 5, pos: 0, seq: 0, logits: true }], [cache])), fresh, recover);
  }
  const cache = m.newCache(64);
  m.forward([{ token: 5, pos: 0, seq: 0, logits: false }], [cache]);
  assert.throws(
    () =>
      m.forward(
        [
          { token: 5, pos: 0, seq: 0, logits: false },
          { token: 6, pos: 0, seq: 0, logits: true },
        ],
        [cache],
      ),
    /cannot be rewound/,
  );
});
