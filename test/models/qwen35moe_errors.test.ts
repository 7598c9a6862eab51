// Bad Qwen3.5-MoE / Qwen3-Next folders and files: one-line errors naming the field, metadata key
// or tensor (more experts chosen than exist, expert stacks of the wrong count or shape, a router
// of the wrong width, a fused projection of the wrong size, dense layers or fields not implemented).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import { expectError, fixtureDir, tmpDir } from '../helpers.js';
import { folderVariant, ggufVariant } from './variants.js';

const MOE = fixtureDir('models/qwen35moe-tiny'),
  NEXT = fixtureDir('models/qwen3next-tiny');
const work = tmpDir();
const folder = (src: string, name: string, edit: Parameters<typeof folderVariant>[2]) => folderVariant(src, path.join(work, name), edit);
const gguf = (src: string, name: string, edit: Parameters<typeof ggufVariant>[2]) => ggufVariant(path.join(src, 'model-f32.gguf'), path.join(work, name), edit);
const load = (p: string) => loadModel(p, { onNote: () => {} });

test('num_experts_per_tok above num_experts is refused, naming both fields or metadata keys', () => {
  expectError(
    () =>
      load(
        folder(MOE, 'topk', {
          config: (c) => {
            c.text_config.num_experts_per_tok = 9;
          },
        }),
      ),
    /config\.json text_config: field 'num_experts_per_tok' = 9 is more than field 'num_experts' = 8/,
  );
  expectError(
    () =>
      load(
        folder(NEXT, 'topk-next', {
          config: (c) => {
            c.num_experts_per_tok = 12;
          },
        }),
      ),
    /field 'num_experts_per_tok' = 12 is more than field 'num_experts' = 8/,
  );
  expectError(
    () =>
      load(
        gguf(MOE, 'topk.gguf', (m) => {
          m.find((k) => k.key === 'qwen35moe.expert_used_count')!.value = 9;
        }),
      ),
    /metadata 'qwen35moe.expert_used_count' = 9 is more than metadata 'qwen35moe.expert_count' = 8/,
  );
  expectError(
    () =>
      load(
        gguf(NEXT, 'nokey.gguf', (m) => {
          m.splice(
            m.findIndex((k) => k.key === 'qwen3next.expert_feed_forward_length'),
            1,
          );
        }),
      ),
    /metadata 'qwen3next.expert_feed_forward_length' is missing/,
  );
});

test('expert stacks of the wrong count or shape name the tensor and both shapes', () => {
  // GGUF: one expert fewer than expert_count
  const few = gguf(MOE, 'few.gguf', (_, t) => {
    const x = t.find((x) => x.name === 'blk.1.ffn_up_exps.weight')!;
    x.shape = [7, ...x.shape.slice(1)];
    x.data = (x.data as Uint8Array).subarray(0, (x.data.length / 8) * 7);
  });
  expectError(() => load(few), /tensor 'blk.1.ffn_up_exps.weight' has shape \[7, 32, 64\], but the config implies \[8, 32, 64\]/);
  // HF per expert: an expert missing, one too many
  const per = path.join(MOE, 'per-expert');
  expectError(
    () => load(folder(per, 'missing', { tensors: (t) => t.filter((x) => x.name !== 'model.layers.2.mlp.experts.5.down_proj.weight') })),
    /tensor 'model.layers.2.mlp.experts.5.down_proj.weight' is missing .*expert 5 of num_experts = 8/,
  );
  expectError(
    () =>
      load(
        folder(per, 'extra', {
          config: (c) => {
            c.num_experts = 7;
            c.num_experts_per_tok = 2;
          },
        }),
      ),
    /tensor 'model.layers.0.mlp.experts.7.gate_proj.weight' is one expert more than the config's num_experts = 7/,
  );
  // HF fused: gate_up_proj of the wrong expert width
  expectError(
    () =>
      load(
        folder(MOE, 'fused', {
          config: (c) => {
            c.text_config.moe_intermediate_size = 16;
          },
        }),
      ),
    /tensor 'model.language_model.layers.0.mlp.experts.gate_up_proj' has shape \[8, 64, 64\], but the config implies \[8, 32, 64\]/,
  );
});

test('a router or shared expert of the wrong width names the tensor', () => {
  const router = gguf(NEXT, 'router.gguf', (_, t) => {
    const x = t.find((x) => x.name === 'blk.3.ffn_gate_inp.weight')!;
    x.shape = [6, 64];
    x.data = (x.data as Uint8Array).subarray(0, 6 * 64 * 4);
  });
  expectError(() => load(router), /tensor 'blk.3.ffn_gate_inp.weight' has shape \[6, 64\], but the config implies \[8, 64\] \(router: num_experts x hidden_size/);
  expectError(
    () =>
      load(
        folder(NEXT, 'shexp', {
          config: (c) => {
            c.shared_expert_intermediate_size = 32;
          },
        }),
      ),
    /tensor 'model.layers.0.mlp.shared_expert.gate_proj.weight' has shape \[64, 64\], but the config implies \[32, 64\]/,
  );
  expectError(
    () => load(folder(NEXT, 'shgate', { tensors: (t) => t.filter((x) => x.name !== 'model.layers.1.mlp.shared_expert_gate.weight') })),
    /tensor 'model.layers.1.mlp.shared_expert_gate.weight' is missing/,
  );
});

test("Qwen3-Next's fused projections of the wrong size name the tensor", () => {
  expectError(
    () =>
      load(
        folder(NEXT, 'qkvz', {
          tensors: (t) =>
            t.map((x) => (x.name !== 'model.layers.0.linear_attn.in_proj_qkvz.weight' ? x : { ...x, shape: [x.shape[0]! - 16, x.shape[1]!], data: x.data.subarray(0, x.data.length - 16 * 64 * 4) })),
        }),
      ),
    /tensor 'model.layers.0.linear_attn.in_proj_qkvz.weight' has shape \[176, 64\], but the config implies \[192, 64\] \(layer_types\[0\] is linear_attention: .*per key head \[q, k, v, z\]\)/,
  );
  expectError(
    () =>
      load(
        gguf(NEXT, 'noba.gguf', (_, t) => {
          t.splice(
            t.findIndex((x) => x.name === 'blk.2.ssm_ba.weight'),
            1,
          );
        }),
      ),
    /tensor 'blk.2.ssm_ba.weight' is missing/,
  );
});

test('config fields an engine must not ignore: dense layers, unnormalised top-k for Qwen3.5-MoE, sliding windows', () => {
  expectError(
    () =>
      load(
        folder(NEXT, 'dense', {
          config: (c) => {
            c.mlp_only_layers = [1];
          },
        }),
      ),
    /field 'mlp_only_layers' is \[1\]: dense layers in a qwen3_next model are not implemented/,
  );
  expectError(
    () =>
      load(
        folder(NEXT, 'step', {
          config: (c) => {
            c.decoder_sparse_step = 2;
          },
        }),
      ),
    /field 'decoder_sparse_step' is 2: dense layers/,
  );
  expectError(
    () =>
      load(
        folder(MOE, 'norm', {
          config: (c) => {
            c.text_config.norm_topk_prob = false;
          },
        }),
      ),
    /field 'norm_topk_prob' is false: Qwen3.5-MoE always renormalises/,
  );
  expectError(
    () =>
      load(
        folder(NEXT, 'swa', {
          config: (c) => {
            c.use_sliding_window = true;
          },
        }),
      ),
    /field 'use_sliding_window' is true/,
  );
  expectError(
    () =>
      load(
        folder(MOE, 'inner', {
          config: (c) => {
            c.text_config.model_type = 'qwen3_5_text';
          },
        }),
      ),
    /field 'model_type' is 'qwen3_5_text', expected 'qwen3_5_moe_text'/,
  );
  expectError(
    () =>
      load(
        folder(MOE, 'unknown', {
          config: (c) => {
            c.text_config.router_jitter = 0.1;
          },
        }),
      ),
    /field 'router_jitter' is not a qwen3_5_moe_text config field/,
  );
});

test('Qwen3-Next without norm_topk_prob renormalisation follows the field: weights not renormalised change the logits', () => {
  const on = load(NEXT),
    off = load(
      folder(NEXT, 'nonorm', {
        config: (c) => {
          c.norm_topk_prob = false;
        },
      }),
    );
  assert.equal(off.config.norm_topk_prob, false);
  const run = (m: typeof on) => m.forward([{ token: 5, pos: 0, seq: 0, logits: true }], [m.newCache(8)]);
  assert.notDeepEqual(Array.from(run(on)), Array.from(run(off)));
});

test('a per-layer expert width array (llama.cpp get_key_or_arr) is read when its values agree, refused otherwise', () => {
  const arr = (v: number[]) => (m: Parameters<Parameters<typeof ggufVariant>[2]>[0]) => {
    const k = m.find((x) => x.key === 'qwen35moe.expert_feed_forward_length')!;
    k.type = { array: 'u32' };
    k.value = v;
  };
  assert.equal(load(gguf(MOE, 'arr.gguf', arr([32, 32, 32, 32, 32]))).config.moe_intermediate_size, 32);
  expectError(() => load(gguf(MOE, 'arr2.gguf', arr([32, 32, 16, 32, 32]))), /metadata 'qwen35moe.expert_feed_forward_length' must be a positive number, got '\[32,32,16,32,32\]'/);
});
