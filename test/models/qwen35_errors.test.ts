// Bad Qwen3.5 folders and files: one-line errors naming the field or tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import { expectError, fixtureDir, tmpDir } from '../helpers.js';
import { folderVariant, ggufVariant } from './variants.js';

const SRC = fixtureDir('models/qwen35-tiny-tied'); // plain text layout, nk = nv = 2
const work = tmpDir();

const folder = (name: string, edit: Parameters<typeof folderVariant>[2]) => folderVariant(SRC, path.join(work, name), edit);
const gguf = (name: string, edit: Parameters<typeof ggufVariant>[2]) => ggufVariant(path.join(SRC, 'model-f32.gguf'), path.join(work, name), edit);

const load = (p: string) => loadModel(p, { onNote: () => {} });

test('layer_types that contradict the tensors present name the tensor and the layer type', () => {
  const d = folder('types', {
    config: (c) => {
      c.layer_types[0] = 'full_attention';
    },
  });
  expectError(() => load(d), /tensor 'model.layers.0.self_attn.q_proj.weight' is missing .*layer_types\[0\] is full_attention/);
  const e = folder('count', {
    config: (c) => {
      c.layer_types.pop();
    },
  });
  expectError(() => load(e), /field 'layer_types' has 3 entries for 4 layers/);
});

test('linear_num_value_heads not a multiple of linear_num_key_heads is refused, naming both fields', () => {
  const d = folder('heads', {
    config: (c) => {
      c.linear_num_value_heads = 3;
    },
  });
  expectError(() => load(d), /'linear_num_value_heads' = 3 is not a multiple of field 'linear_num_key_heads' = 2/);
  const f = gguf('heads.gguf', (m) => {
    m.find((k) => k.key === 'qwen35.ssm.time_step_rank')!.value = 3;
    m.find((k) => k.key === 'qwen35.ssm.inner_size')!.value = 96;
  });
  expectError(() => load(f), /metadata 'qwen35.ssm.time_step_rank' = 3 is not a multiple of metadata 'qwen35.ssm.group_count' = 2/);
});

test('a missing DeltaNet tensor is named, in HF and GGUF files', () => {
  const d = folder('nob', { tensors: (t) => t.filter((x) => x.name !== 'model.layers.1.linear_attn.in_proj_b.weight') });
  expectError(() => load(d), /tensor 'model.layers.1.linear_attn.in_proj_b.weight' is missing/);
  const n = folder('noalog', { tensors: (t) => t.filter((x) => x.name !== 'model.layers.2.linear_attn.A_log') });
  expectError(() => load(n), /tensor 'model.layers.2.linear_attn.A_log' is missing/);
  const f = gguf('noa.gguf', (_, t) => {
    t.splice(
      t.findIndex((x) => x.name === 'blk.0.ssm_a'),
      1,
    );
  });
  expectError(() => load(f), /tensor 'blk.0.ssm_a' is missing/);
});

test('a conv weight of the wrong shape names the tensor and both shapes', () => {
  const d = folder('conv', {
    tensors: (t) =>
      t.map((x) => {
        if (x.name !== 'model.layers.0.linear_attn.conv1d.weight') return x;
        const [C, , K] = x.shape as [number, number, number];
        return { ...x, shape: [C, 1, K + 1], data: new Uint8Array(C * (K + 1) * 4) };
      }),
  });
  expectError(() => load(d), /tensor 'model.layers.0.linear_attn.conv1d.weight' has shape \[192, 1, 5\], but the config implies \[192, 4\]/);
});

test('config.json: an unknown text_config field, MoE, and unequal DeltaNet head sizes are refused', () => {
  expectError(
    () =>
      load(
        folder('unknown', {
          config: (c) => {
            c.linear_chunk_mode = 'x';
          },
        }),
      ),
    /field 'linear_chunk_mode' is not a qwen3_5_text config field/,
  );
  expectError(
    () =>
      load(
        folder('moe', {
          config: (c) => {
            c.num_experts = 8;
          },
        }),
      ),
    /field 'num_experts': mixture-of-experts Qwen3.5 is not implemented yet/,
  );
  expectError(
    () =>
      load(
        folder('dv', {
          config: (c) => {
            c.linear_value_head_dim = 64;
          },
        }),
      ),
    /'linear_value_head_dim' = 64 differs from linear_key_head_dim = 32/,
  );
  expectError(
    () =>
      load(
        folder('rot', {
          config: (c) => {
            c.rope_parameters.partial_rotary_factor = 0.3;
          },
        }),
      ),
    /partial_rotary_factor' = 0.3 gives 19.2 rotary dims/,
  );
});

test('config.json: a qwen3_5 config with the text fields flattened to the top level (no text_config) is read', () => {
  const d = folder('flat', {
    config: (c) => {
      c.model_type = 'qwen3_5';
      c.architectures = ['Qwen3_5ForConditionalGeneration'];
      c.image_token_id = 284;
      c.vision_config = { depth: 1 };
    },
  });
  const m = load(d);
  assert.equal(m.config.model_type, 'qwen3_5_text');
  assert.equal(m.config.linear_num_value_heads, 2);
});
