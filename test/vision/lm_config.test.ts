// The Qwen2.5-VL language model's files: config.json as older checkpoints write it (text fields at
// the top level, rope_scaling {type: 'mrope', mrope_section}) and as transformers >= 4.52 does
// (text_config, rope_type 'default' beside mrope_section; transformers 5's rope_parameters), weights
// named `model.*` / `visual.*` or `model.language_model.*` / `model.visual.*`, and the GGUF file
// (qwen2vl, rope.dimension_sections): the same model, the same logits with image rows. Then the
// config errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { QwenError } from '../../src/errors.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensors_writer.js';
import { parseHfConfig } from '../../src/models/config.js';
import type { BatchEntry } from '../../src/models/kv_cache.js';
import { loadModel } from '../../src/models/load.js';
import { imageFields, mropePositions } from '../../src/vision/positions.js';
import type { PromptImage } from '../../src/vision/types.js';
import { relErr, tmpDir } from '../helpers.js';
import { loadOracle, oracleEmbd, visionGguf, visionHfDir } from './fixtures.js';

const HF = visionHfDir('tiny-qwen25vl');
const flat = JSON.parse(fs.readFileSync(path.join(HF, 'config.json'), 'utf8')) as Record<string, unknown>;
const VISION = ['vision_config', 'image_token_id', 'video_token_id', 'vision_start_token_id', 'vision_end_token_id', 'vision_token_id'];

/** The flat config as transformers >= 4.52 saves it: the text fields in text_config. */
function nested(rope: Record<string, unknown>): Record<string, unknown> {
  const outer: Record<string, unknown> = { model_type: 'qwen2_5_vl', architectures: flat.architectures, tie_word_embeddings: flat.tie_word_embeddings };
  const text: Record<string, unknown> = { model_type: 'qwen2_5_vl_text' };
  for (const [k, v] of Object.entries(flat)) {
    if (VISION.includes(k)) outer[k] = v;
    else if (!['model_type', 'architectures', 'rope_scaling', 'rope_theta'].includes(k)) text[k] = v;
  }
  return { ...outer, text_config: { ...text, ...rope } };
}

/** The HF fixture re-saved with the newer tensor names and `config`. */
function newerFolder(config: Record<string, unknown>): string {
  const dir = tmpDir('qwen-ts-vl-');
  const src = openSafetensors(HF);
  try {
    const rename = (n: string) => (n.startsWith('visual.') ? `model.${n}` : n.startsWith('model.') ? `model.language_model.${n.slice(6)}` : n);
    writeSafetensors(
      path.join(dir, 'model.safetensors'),
      [...src.tensors.values()].map((t) => {
        const data = new Uint8Array(t.byteLength);
        src.readInto(t.name, data);
        return { name: rename(t.name), dtype: t.dtype, shape: t.shape, data };
      }),
    );
  } finally {
    src.close();
  }
  for (const f of fs.readdirSync(HF)) if (f !== 'model.safetensors' && f !== 'config.json') fs.copyFileSync(path.join(HF, f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const o = loadOracle('tiny-qwen25vl', 'f32', '56x84');
const images: PromptImage[] = [{ start: o.image.start, image: { rows: oracleEmbd(o), nx: o.image.nx, ny: o.image.ny, dim: o.image.dim, hash: 'x' } }];
const ids = o.prompt_tokens.map((t) => (t < 0 ? 284 : t));
const plan = mropePositions(ids.length, images);
const batch: BatchEntry[] = ids.map((token, pos) => ({ token, pos, seq: 0, logits: true, ...imageFields(plan, images, pos) }));

function logits(p: string): { out: Float32Array; vision: boolean } {
  const m = loadModel(p, { backend: new ReferenceBackend(), onNote: (n) => assert.fail(`unexpected note: ${n}`) });
  assert.equal(m.config.model_type, 'qwen2_5_vl');
  assert.deepEqual(m.config.mrope_section, [2, 3, 3]);
  return { out: m.forward(batch, [m.newCache(ids.length)]), vision: m.vision !== undefined };
}

test('Qwen2.5-VL: old and new config.json / tensor names and the GGUF file are the same model', () => {
  const old = logits(HF);
  assert.ok(old.vision, 'the HF folder brings its tower');
  const newer = logits(newerFolder(nested({ rope_theta: flat.rope_theta, rope_scaling: { type: 'default', rope_type: 'default', mrope_section: [2, 3, 3] } })));
  assert.deepEqual(newer.out, old.out, 'text_config + model.language_model.*: bit for bit');
  assert.ok(newer.vision, 'the tower from model.visual.*');
  const v5 = logits(newerFolder(nested({ rope_parameters: { rope_type: 'default', rope_theta: flat.rope_theta, mrope_section: [2, 3, 3] } })));
  assert.deepEqual(v5.out, old.out, "transformers 5's rope_parameters");
  const gguf = logits(visionGguf('tiny-qwen25vl', 'f32').model);
  assert.ok(relErr(gguf.out, old.out) < 1e-6, 'GGUF = HF');
});

test('Qwen2.5-VL config errors name the field', () => {
  const bad = (c: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => parseHfConfig(c, 'config.json'),
      (e: unknown) => e instanceof QwenError && re.test(e.message),
    );
  bad({ ...flat, rope_scaling: { type: 'default' } }, /config\.json: field 'rope_scaling': a qwen2_5_vl model needs rope_scaling\.mrope_section/);
  bad({ ...flat, rope_scaling: { type: 'mrope', mrope_section: [2, 3, 2] } }, /mrope_section \[2,3,2\] covers 7 rotary pairs, but the model rotates 8 \(head_dim 16 \/ 2\)/);
  bad({ ...flat, rope_scaling: { type: 'mrope', mrope_section: [2, 3] } }, /mrope_section must be three non-negative integers/);
  bad({ ...flat, rope_scaling: { type: 'yarnish', mrope_section: [2, 3, 3] } }, /asks for rope type 'yarnish', which is not implemented/);
  const n = nested({ rope_scaling: { type: 'mrope', mrope_section: [2, 3, 3] } });
  bad({ ...n, hidden_size: 32 }, /config\.json text_config: field 'hidden_size' is 64 but the top level gives 32/);
  bad({ ...n, text_config: 'x' }, /field 'text_config' must be an object/);
  bad({ ...n, text_config: { ...(n.text_config as object), model_type: 'qwen2' } }, /text_config: field 'model_type' is 'qwen2', expected 'qwen2_5_vl_text'/);
  bad({ ...n, text_config: { ...(n.text_config as object), wobble: 1 } }, /text_config: field 'wobble' is not a qwen2 config field/);
  // the text fields at both levels, the rope dict spelled two ways (as some re-saved checkpoints have it): one config
  const both = { ...flat, ...nested({ rope_scaling: { type: 'default', rope_type: 'default', mrope_section: [2, 3, 3] } }), rope_scaling: { type: 'mrope', mrope_section: [2, 3, 3] } };
  const c = parseHfConfig(both, 'config.json');
  assert.deepEqual([c.model_type, c.hidden_size, c.mrope_section, c.rope_theta], ['qwen2_5_vl', 64, [2, 3, 3], 1e6]);
  // Qwen2-VL: the same language model
  assert.equal(parseHfConfig({ ...flat, model_type: 'qwen2_vl' }, 'config.json').model_type, 'qwen2_vl');
});
