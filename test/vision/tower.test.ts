// The vision towers (src/vision: Qwen2.5-VL's windowed tower, Qwen3.5's with the learned position
// grid) against vision_ref.py, the float64 numpy tower of ../shared/peer that agrees with llama.cpp
// layer by layer to ~2e-7 (VISION.md, Verification). refs.json.gz holds its embeddings computed
// with the model's own math (no fp16 rounding of the patch kernel, pixels or GELU, which
// llama.cpp's CPU backend adds: see tower_oracle.test.ts for llama.cpp itself) for the tiny
// presets' mmproj files (test/fixtures/vision/<preset>, SHA-256 checked), on images of 4 sizes per
// preset (the reference backend: the 2 smaller) that need no resize: non-square grids, partial windows (2.5), a position grid resized
// or not (3.5). Tolerances, ||a - ref|| / ||ref||: reference backend (f64 sums) 1e-6, measured
// ~1.3e-7; WASM F32 2e-6, measured ~4e-7. WASM on Q8_0 weights quantises the activations to int8
// as ggml does (the reference backend and vision_ref do not): 3e-2 here, measured ~1.5e-2 on these
// tiny random towers; its agreement with llama.cpp's own Q8_0 path is tower_oracle.test.ts's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { FIXTURES, relErr, tmpDir } from '../helpers.js';
import { visionGguf } from './fixtures.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import type { Backend } from '../../src/backend/backend.js';
import { openGguf, type GgufKV } from '../../src/formats/gguf.js';
import { writeGguf } from '../../src/formats/gguf_writer.js';
import { loadVisionTower } from '../../src/vision/tower.js';
import { visionConfigFromHf } from '../../src/vision/config.js';
import type { RgbImage } from '../../src/vision/types.js';

interface Ref {
  preset: 'tiny-qwen25vl' | 'tiny-qwen35vl';
  type: 'f32' | 'q8_0';
  mmproj_sha256: string;
  image: string;
  width: number;
  height: number;
  rgb_sha256: string;
  nx: number;
  ny: number;
  dim: number;
  embd_f32_base64: string;
}
const REFS = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(FIXTURES, 'vision_tower', 'refs.json.gz'))).toString('utf8')) as Ref[];

/** The preset's mmproj GGUF among the vision fixtures (a gzip'd one unpacked once). */
const mmproj = (preset: Ref['preset'], type: Ref['type']): string => visionGguf(preset, type).mmproj;

/** make_png.py's test pattern (peer tools): R, G gradients (Python's round: half to even), B a checkerboard xor (x*y)&31. */
function pattern(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  const round = (v: number) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = 3 * (y * w + x);
      data[o] = round((255 * x) / Math.max(w - 1, 1));
      data[o + 1] = round((255 * y) / Math.max(h - 1, 1));
      data[o + 2] = ((Math.floor(x / 8) + Math.floor(y / 8)) % 2 ? 224 : 32) ^ ((x * y) & 31);
    }
  return { width: w, height: h, data };
}

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const wasm = new WasmBackend({ threads: 2 });
after(() => wasm.dispose());
// [backend, tolerance, images]: the slow reference backend on the two smaller images of each preset
const backends: [Backend, (type: string) => number, number][] = [
  [new ReferenceBackend(), () => 1e-6, 2],
  [wasm, (type) => (type === 'f32' ? 2e-6 : 3e-2), 4],
];

for (const preset of ['tiny-qwen25vl', 'tiny-qwen35vl'] as const)
  for (const type of ['f32', 'q8_0'] as const)
    for (const [be, tol, images] of backends)
      test(`${preset} ${type} on ${be.name}: embeddings = vision_ref.py (float64) to ${tol(type)}, ${images} image sizes`, () => {
        const all = REFS.filter((r) => r.preset === preset && r.type === type);
        assert.equal(all.length, 4);
        const refs = all.sort((a, b) => a.nx * a.ny - b.nx * b.ny).slice(0, images);
        const file = mmproj(preset, type);
        assert.equal(sha256(fs.readFileSync(file)), refs[0]!.mmproj_sha256, `${file} is not the mmproj the references were computed from`);
        const tower = loadVisionTower(file, be, refs[0]!.dim);
        assert.equal(tower.kind, preset === 'tiny-qwen25vl' ? 'qwen2_5_vl' : 'qwen3_5');
        for (const r of refs) {
          const img = pattern(r.width, r.height);
          assert.equal(sha256(img.data), r.rgb_sha256, `pattern ${r.image}`);
          assert.deepEqual(tower.grid(r.width, r.height), { nx: r.nx, ny: r.ny });
          const e = tower.encode(img, 'h');
          assert.deepEqual([e.nx, e.ny, e.dim, e.hash, e.rows.length], [r.nx, r.ny, r.dim, 'h', r.nx * r.ny * r.dim]);
          const b = Buffer.from(r.embd_f32_base64, 'base64');
          const want = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
          const err = relErr(e.rows, want);
          assert.ok(err < tol(type), `${r.image}: relative error ${err.toExponential(2)}`);
        }
      });

// ---- bad input: clear errors naming the file, field or tensor ----

/** A copy of an mmproj with its metadata and tensors edited. */
function edited(src: string, edit: (kv: GgufKV[], tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[]) => void): string {
  const g = openGguf(src);
  try {
    const kv: GgufKV[] = [...g.metadata].map(([key, value]) => ({ key, type: g.metadataTypes.get(key)!, value }));
    const tensors = g.tensorList.map((t) => {
      const data = new Uint8Array(t.byteLength);
      g.readInto(t.name, data);
      return { name: t.name, dtype: t.dtype as string, shape: [...t.shape], data };
    });
    edit(kv, tensors);
    const out = path.join(tmpDir('qwen-ts-vision-bad-'), 'mmproj.gguf');
    writeGguf(out, { metadata: kv, tensors: tensors as Parameters<typeof writeGguf>[1]['tensors'] });
    return out;
  } finally {
    g.close();
  }
}

test('mmproj errors: another model (projection_dim), unknown projector, DeepStack, missing / misshapen / unknown tensor, not an mmproj', () => {
  const be = new ReferenceBackend();
  const q25 = mmproj('tiny-qwen25vl', 'f32'),
    q35 = mmproj('tiny-qwen35vl', 'f32');
  assert.throws(() => loadVisionTower(path.join(path.dirname(q25), 'nope.gguf'), be), /nope\.gguf: no such mmproj file or model folder/);
  assert.throws(() => loadVisionTower(q25, be, 896), /rows of 64 \(projection_dim\), but the language model's hidden size is 896: this mmproj belongs to another model/);
  const setKv = (key: string, type: GgufKV['type'], value: GgufKV['value']) => (kv: GgufKV[]) => {
    const e = kv.find((k) => k.key === key);
    if (e) Object.assign(e, { type, value });
    else kv.push({ key, type, value });
  };
  assert.throws(() => loadVisionTower(edited(q25, setKv('clip.projector_type', 'str', 'llava')), be), /clip\.projector_type 'llava' is not one qwen\.ts runs/);
  assert.throws(() => loadVisionTower(edited(q35, setKv('clip.vision.is_deepstack_layers', { array: 'bool' }, [true, false])), be), /DeepStack/);
  assert.throws(() => loadVisionTower(edited(q25, setKv('general.architecture', 'str', 'qwen2vl')), be), /general\.architecture is 'qwen2vl', not "clip": not an mmproj/);
  assert.throws(() => loadVisionTower(edited(q25, setKv('clip.vision.attention.head_count', 'u32', 3)), be), /head size/);
  assert.throws(() => loadVisionTower(edited(q25, setKv('clip.vision.image_std', { array: 'f32' }, [0.5, 0.5])), be), /metadata clip\.vision\.image_std is '\[0\.5,0\.5\]', expected 3 numbers/);
  const drop = (name: string) => (_: GgufKV[], t: { name: string }[]) =>
    t.splice(
      t.findIndex((x) => x.name === name),
      1,
    );
  assert.throws(() => loadVisionTower(edited(q25, drop('v.blk.2.attn_out.weight')), be), /tensor 'v\.blk\.2\.attn_out\.weight' is missing/);
  assert.throws(() => loadVisionTower(edited(q35, drop('v.position_embd.weight')), be), /v\.position_embd\.weight/);
  assert.throws(
    () =>
      loadVisionTower(
        edited(q25, (_, t) => {
          const e = t.find((x) => x.name === 'mm.2.weight')!;
          e.shape = [32, 256];
          e.data = e.data.subarray(0, 32 * 256 * 4);
        }),
        be,
      ),
    /tensor 'mm\.2\.weight' has shape \[32, 256\], but the vision config implies \[64, 128\]/,
  );
  const extra = (name: string) => (_: GgufKV[], t: { name: string; dtype: string; shape: number[]; data: Uint8Array }[]) => t.push({ name, dtype: 'F32', shape: [4], data: new Uint8Array(16) });
  assert.throws(() => loadVisionTower(edited(q25, extra('v.blk.0.extra.weight')), be), /tensor 'v\.blk\.0\.extra\.weight' is not part of the qwen2\.5vl_merger tower/);
  assert.throws(() => loadVisionTower(edited(q35, extra('v.deepstack.0.fc1.weight')), be), /tensor 'v\.deepstack\.0\.fc1\.weight': DeepStack layers \(Qwen3-VL proper\) are not supported/);
});

test('HF vision_config errors: DeepStack and unknown model types refused by name', () => {
  const v = {
    depth: 2,
    hidden_size: 32,
    intermediate_size: 96,
    num_heads: 2,
    patch_size: 16,
    spatial_merge_size: 2,
    temporal_patch_size: 2,
    out_hidden_size: 128,
    hidden_act: 'gelu_pytorch_tanh',
    num_position_embeddings: 64,
  };
  assert.equal(visionConfigFromHf({ model_type: 'qwen3_5', vision_config: { ...v, deepstack_visual_indexes: [] } }, undefined, 'x').out_hidden_size, 128);
  assert.throws(() => visionConfigFromHf({ model_type: 'qwen3_5', vision_config: { ...v, deepstack_visual_indexes: [5, 11] } }, undefined, 'x'), /deepstack_visual_indexes '\[5,11\]': DeepStack/);
  assert.throws(() => visionConfigFromHf({ model_type: 'qwen3_vl', vision_config: v }, undefined, 'x'), /model_type 'qwen3_vl' has no vision tower qwen\.ts runs .*DeepStack/);
  assert.throws(
    () => visionConfigFromHf({ model_type: 'qwen3_5', vision_config: { ...v, hidden_act: 'relu' } }, undefined, 'x'),
    /vision_config\.hidden_act is 'relu'; the qwen3_5 tower uses gelu_pytorch_tanh/,
  );
  assert.throws(() => visionConfigFromHf({ model_type: 'qwen3_5', vision_config: { ...v, depth: 0 } }, undefined, 'x'), /vision_config\.depth is 0, expected a positive integer/);
  assert.throws(() => visionConfigFromHf({ model_type: 'qwen3_5', vision_config: v }, { image_mean: [0.5] }, 'x'), /x: image_mean is '\[0\.5\]', expected 3 numbers/);
});
