// Bad model folders and files: each gives a QwenError naming the file and the tensor or field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import { parseHfConfig } from '../../src/models/config.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors, type StTensorOut } from '../../src/formats/safetensors_writer.js';
import { fixtureDir, tmpDir } from '../helpers.js';
import { ggufVariant as ggufFileVariant } from './variants.js';

const SRC = fixtureDir('models/qwen2-tiny-tied');
const CONFIG = JSON.parse(fs.readFileSync(path.join(SRC, 'config.json'), 'utf8'));
const work = tmpDir();

function tensors(): StTensorOut[] {
  const s = openSafetensors(SRC);
  const out = [...s.tensors.values()].map((t) => {
    const data = new Uint8Array(t.byteLength);
    s.readInto(t.name, data);
    return { name: t.name, dtype: t.dtype, shape: t.shape, data };
  });
  s.close();
  return out;
}

/** A model folder with edited config and tensors. */
function folder(name: string, edit: { config?: (c: any) => void; tensors?: (t: StTensorOut[]) => StTensorOut[] }): string {
  const d = path.join(work, name);
  fs.mkdirSync(d, { recursive: true });
  const c = structuredClone(CONFIG);
  edit.config?.(c);
  fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(c));
  writeSafetensors(path.join(d, 'model.safetensors'), (edit.tensors ?? ((t) => t))(tensors()));
  return d;
}

function expectError(fn: () => unknown, file: string, re: RegExp) {
  assert.throws(fn, (e: Error) => {
    assert.equal(e.name, 'QwenError', e.stack);
    assert.ok(e.message.includes(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test('a missing tensor is named', () => {
  const d = folder('missing', { tensors: (t) => t.filter((x) => x.name !== 'model.layers.1.mlp.up_proj.weight') });
  expectError(() => loadModel(d), 'model.safetensors', /tensor 'model.layers.1.mlp.up_proj.weight' is missing/);
});

test('a misnamed tensor is named (as missing, or as not part of the architecture)', () => {
  const d = folder('misnamed', { tensors: (t) => t.map((x) => (x.name === 'model.norm.weight' ? { ...x, name: 'model.final_norm.weight' } : x)) });
  expectError(() => loadModel(d), 'model.safetensors', /tensor 'model.norm.weight' is missing/);
});

test('an extra tensor the architecture does not have is refused', () => {
  const d = folder('extra', { tensors: (t) => [...t, { ...t[1]!, name: 'model.visual.blocks.0.norm.weight' }] });
  expectError(() => loadModel(d), 'model.safetensors', /tensor 'model.visual.blocks.0.norm.weight' is not part of this model architecture/);
});

test('a shape that contradicts the config names the tensor and both shapes', () => {
  const d = folder('shape', {
    config: (c) => {
      c.intermediate_size = 96;
    },
  });
  expectError(() => loadModel(d), 'model.safetensors', /tensor 'model.layers.0.mlp.gate_proj.weight' has shape \[128, 64\], but the config implies \[96, 64\]/);
});

test('untied config without lm_head names the missing tensor', () => {
  const d = folder('untied', {
    config: (c) => {
      c.tie_word_embeddings = false;
    },
  });
  expectError(() => loadModel(d), 'model.safetensors', /tensor 'lm_head.weight' is missing/);
});

const CONFIG_CASES: [string, (c: any) => void, RegExp][] = [
  [
    'unknown model_type',
    (c) => {
      c.model_type = 'llama';
    },
    /field 'model_type' is 'llama', which qwen.ts does not implement/,
  ],
  [
    'missing model_type',
    (c) => {
      delete c.model_type;
    },
    /field 'model_type' is missing/,
  ],
  [
    'sliding window on',
    (c) => {
      c.use_sliding_window = true;
      c.sliding_window = 4096;
    },
    /field 'use_sliding_window' is true/,
  ],
  [
    'yarn rope scaling without its original context',
    (c) => {
      c.rope_scaling = { type: 'yarn', factor: 4 };
    },
    /field 'rope_scaling.original_max_position_embeddings' is missing/,
  ],
  [
    'rope_parameters spelling, non-default',
    (c) => {
      c.rope_parameters = { rope_type: 'linear', factor: 2 };
    },
    /field 'rope_parameters' asks for rope type 'linear'/,
  ],
  [
    'vision tower',
    (c) => {
      c.vision_config = { depth: 32 };
    },
    /field 'vision_config': vision towers are not implemented/,
  ],
  [
    'unknown field',
    (c) => {
      c.attn_logit_softcapping = 30;
    },
    /field 'attn_logit_softcapping' is not a qwen2 config field/,
  ],
  [
    'kv heads not dividing',
    (c) => {
      c.num_key_value_heads = 3;
    },
    /field 'num_key_value_heads' = 3 does not divide/,
  ],
  [
    'non-integer size',
    (c) => {
      c.hidden_size = '64';
    },
    /field 'hidden_size' must be a positive integer/,
  ],
  [
    'other activation',
    (c) => {
      c.hidden_act = 'gelu';
    },
    /field 'hidden_act' is 'gelu'/,
  ],
  [
    'quantised checkpoint',
    (c) => {
      c.quantization_config = { quant_method: 'awq' };
    },
    /field 'quantization_config'/,
  ],
  [
    'hybrid layer types',
    (c) => {
      c.layer_types = ['full_attention', 'sliding_attention'];
    },
    /field 'layer_types'/,
  ],
];
for (const [name, edit, re] of CONFIG_CASES) {
  test(`config.json: ${name} is refused, naming the field`, () => {
    const c = structuredClone(CONFIG);
    edit(c);
    expectError(() => parseHfConfig(c, '/m/config.json'), '/m/config.json', re);
  });
}

test('config.json: rope_parameters (transformers 5 spelling) and dtype are read', () => {
  const c = structuredClone(CONFIG);
  delete c.rope_theta;
  delete c.torch_dtype;
  c.rope_parameters = { rope_type: 'default', rope_theta: 5e5 };
  c.dtype = 'bfloat16';
  const cfg = parseHfConfig(c, 'config.json');
  assert.equal(cfg.rope_theta, 5e5);
  assert.equal(cfg.torch_dtype, 'bfloat16');
  assert.equal(cfg.head_dim, 16);
});

test('config.json that is not JSON names the file', () => {
  const d = folder('badjson', {});
  fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": "qwen2",');
  expectError(() => loadModel(d), 'config.json', /not valid JSON/);
});

test('a folder without config.json, and a file that is neither GGUF nor a folder', () => {
  const d = path.join(work, 'empty');
  fs.mkdirSync(d);
  expectError(() => loadModel(d), d, /no config.json/);
  const f = path.join(work, 'notes.txt');
  fs.writeFileSync(f, 'hello');
  expectError(() => loadModel(f), f, /neither a GGUF file nor/);
  expectError(() => loadModel(path.join(work, 'nope')), 'nope', /no such file/);
});

const ggufVariant = (name: string, edit: Parameters<typeof ggufFileVariant>[2]) => ggufFileVariant(path.join(SRC, 'model-f32.gguf'), path.join(work, name), edit);

test('GGUF: unknown architecture, missing hyper-parameter, missing and mis-shaped tensors are named', () => {
  let f = ggufVariant('llama.gguf', (m) => {
    m.find((k) => k.key === 'general.architecture')!.value = 'llama';
  });
  expectError(() => loadModel(f), f, /'general.architecture' is 'llama', which qwen.ts does not implement/);
  f = ggufVariant('noblocks.gguf', (m) => {
    m.splice(
      m.findIndex((k) => k.key === 'qwen2.block_count'),
      1,
    );
  });
  expectError(() => loadModel(f), f, /metadata 'qwen2.block_count' is missing/);
  f = ggufVariant('notensor.gguf', (_, t) => {
    t.splice(
      t.findIndex((x) => x.name === 'blk.1.attn_v.bias'),
      1,
    );
  });
  expectError(() => loadModel(f), f, /tensor 'blk.1.attn_v.bias' is missing/);
  f = ggufVariant('yarn.gguf', (m) => {
    m.push({ key: 'qwen2.rope.scaling.type', type: 'str', value: 'yarn' });
  });
  expectError(() => loadModel(f), f, /rope.scaling.factor' is missing/);
  f = ggufVariant('ffn.gguf', (m) => {
    m.find((k) => k.key === 'qwen2.feed_forward_length')!.value = 256;
  });
  expectError(() => loadModel(f), f, /tensor 'blk.0.ffn_gate.weight' has shape \[128, 64\], but the config implies \[256, 64\]/);
});

test('forward: token ids out of range, position gaps and overflowing the context are errors', () => {
  const m = loadModel(SRC);
  const cache = m.newCache(4);
  assert.throws(() => m.forward([{ token: 320, pos: 0, seq: 0, logits: true }], [cache]), /token id 320 .* out of range: the vocabulary has 320 entries/);
  assert.throws(() => m.forward([{ token: -1, pos: 0, seq: 0, logits: true }], [cache]), /token id -1/);
  assert.throws(() => m.forward([{ token: 1, pos: 2, seq: 0, logits: true }], [cache]), /position 2 of sequence 0 would leave a gap/);
  assert.throws(() => m.forward([{ token: 1, pos: 0, seq: 1, logits: true }], [cache]), /sequence 1 has no KV cache/);
  assert.throws(() => m.forward([], [cache]), /empty batch/);
  m.forward(
    [0, 1, 2, 3].map((token, pos) => ({ token, pos, seq: 0, logits: false })),
    [cache],
  );
  assert.equal(cache.length, 4);
  assert.throws(() => m.forward([{ token: 1, pos: 4, seq: 0, logits: true }], [cache]), /position 4 is past the context size 4/);
});
