// Bad Qwen2-MoE / Qwen3-MoE folders and files (issue 12): more experts per token than experts,
// expert tensors of the wrong count or shape, a router of the wrong width, dense layers without
// their FFN size: one-line errors naming the field, metadata key or tensor.
import { test } from 'node:test';
import * as path from 'node:path';
import { convertToGguf } from '../../src/formats/to_gguf.js';
import { loadModel, openModelFiles } from '../../src/models/load.js';
import { expectError, fixtureDir, tmpDir } from '../helpers.js';
import { folderVariant, ggufVariant } from './variants.js';

const Q3 = fixtureDir('models/qwen3moe-tiny'),
  Q2 = fixtureDir('models/qwen2moe-tiny');
const work = tmpDir();
type Edit = Parameters<typeof folderVariant>[2];
const folder = (src: string, name: string, edit: Edit) => folderVariant(src, path.join(work, name), edit);
const gguf = (src: string, name: string, edit: Parameters<typeof ggufVariant>[2]) => ggufVariant(path.join(src, 'model-f32.gguf'), path.join(work, name), edit);
const load = (p: string) => loadModel(p, { onNote: () => {} });

test('num_experts_per_tok above num_experts is refused, naming both (config.json and GGUF)', () => {
  expectError(
    () =>
      load(
        folder(Q3, 'k', {
          config: (c) => {
            c.num_experts_per_tok = 9;
          },
        }),
      ),
    /field 'num_experts_per_tok' = 9 is more than num_experts = 8/,
  );
  const f = gguf(Q3, 'k.gguf', (m) => {
    m.find((k) => k.key === 'qwen3moe.expert_used_count')!.value = 9;
  });
  expectError(() => load(f), /metadata 'qwen3moe.expert_used_count' = 9 is more than expert_count = 8/);
  expectError(
    () =>
      load(
        folder(Q2, 'k0', {
          config: (c) => {
            c.num_experts_per_tok = 0;
          },
        }),
      ),
    /field 'num_experts_per_tok' must be a positive integer, got 0/,
  );
});

test('expert tensors of the wrong count are named: one expert too many or missing, a stack of the wrong size', () => {
  // HF, one tensor per expert: config says 7 experts, the file has 8
  expectError(
    () =>
      load(
        folder(Q3, 'e7', {
          config: (c) => {
            c.num_experts = 7;
          },
        }),
      ),
    /tensor 'model.layers.0.mlp.experts.7.gate_proj.weight' is one expert more than the config's num_experts = 7/,
  );
  // ... or an expert's tensor is missing
  const missing = folder(Q3, 'miss', { tensors: (t) => t.filter((x) => x.name !== 'model.layers.1.mlp.experts.5.up_proj.weight') });
  expectError(() => load(missing), /tensor 'model.layers.1.mlp.experts.5.up_proj.weight' is missing \(the config asks for it: expert 5 of num_experts = 8/);
  // HF fused, and GGUF stacks: the expert dimension contradicts num_experts
  expectError(
    () =>
      load(
        folder(path.join(Q3, 'fused'), 'f9', {
          config: (c) => {
            c.num_experts = 9;
          },
        }),
      ),
    /tensor 'model.layers.0.mlp.experts.gate_up_proj' has shape \[8, 64, 64\], but the config implies \[9, 64, 64\]/,
  );
  const g = gguf(Q2, 'e9.gguf', (m) => {
    m.find((k) => k.key === 'qwen2moe.expert_count')!.value = 9;
  });
  expectError(() => load(g), /tensor 'blk.0.ffn_gate_exps.weight' has shape \[8, 32, 64\], but the config implies \[9, 32, 64\] \(num_experts x moe_intermediate_size x hidden_size; layer 0\)/);
});

test('an expert tensor of the wrong shape names the tensor, its shape and what the config implies', () => {
  const d = folder(Q3, 'shape', {
    tensors: (t) => t.map((x) => (x.name === 'model.layers.0.mlp.experts.2.down_proj.weight' ? { ...x, shape: [32, 64], data: x.data } : x)),
  });
  expectError(
    () => load(d),
    /tensor 'model.layers.0.mlp.experts.2.down_proj.weight' has shape \[32, 64\], but the config implies \[64, 32\] \(expert 2 of num_experts = 8: hidden_size x moe_intermediate_size/,
  );
  const f = gguf(Q3, 'ff.gguf', (m) => {
    m.find((k) => k.key === 'qwen3moe.expert_feed_forward_length')!.value = 64;
  });
  expectError(() => load(f), /tensor 'blk.0.ffn_gate_exps.weight' has shape \[8, 32, 64\], but the config implies \[8, 64, 64\] \(num_experts x moe_intermediate_size x hidden_size/);
});

test('a router of the wrong width names the tensor', () => {
  const d = folder(Q2, 'router', {
    tensors: (t) => t.map((x) => (x.name === 'model.layers.1.mlp.gate.weight' ? { ...x, shape: [8, 32], data: x.data.subarray(0, 8 * 32 * 4) } : x)),
  });
  expectError(() => load(d), /tensor 'model.layers.1.mlp.gate.weight' has shape \[8, 32\], but the config implies \[8, 64\] \(router: num_experts x hidden_size\)/);
  const g = folder(Q2, 'shgate', { tensors: (t) => t.filter((x) => x.name !== 'model.layers.0.mlp.shared_expert_gate.weight') });
  expectError(() => load(g), /tensor 'model.layers.0.mlp.shared_expert_gate.weight' is missing \(the config asks for it: shared expert: its gate/);
});

test('config.json: MoE fields checked (mlp_only_layers, shared expert sizes, qkv_bias); dense layers need their FFN', () => {
  expectError(
    () =>
      load(
        folder(Q3, 'only', {
          config: (c) => {
            c.mlp_only_layers = [2];
          },
        }),
      ),
    /field 'mlp_only_layers' must list layer indices 0\.\.1, got \[2\]/,
  );
  expectError(
    () =>
      load(
        folder(Q3, 'shexp', {
          config: (c) => {
            c.shared_expert_intermediate_size = 64;
          },
        }),
      ),
    /field 'shared_expert_intermediate_size': qwen3_moe has no shared expert/,
  );
  expectError(
    () =>
      load(
        folder(Q2, 'noshexp', {
          config: (c) => {
            delete c.shared_expert_intermediate_size;
          },
        }),
      ),
    /field 'shared_expert_intermediate_size' is missing/,
  );
  expectError(
    () =>
      load(
        folder(Q2, 'nobias', {
          config: (c) => {
            c.qkv_bias = false;
          },
        }),
      ),
    /field 'qkv_bias' is false/,
  );
  // layer 1 dense: its gate_proj / up_proj / down_proj are asked for (and the experts are then unknown)
  expectError(
    () =>
      load(
        folder(Q3, 'dense1', {
          config: (c) => {
            c.mlp_only_layers = [1];
          },
        }),
      ),
    /tensor 'model.layers.1.mlp.gate_proj.weight' is missing \(the config asks for it: intermediate_size x hidden_size \(layer 1 is dense\)\)/,
  );
  expectError(
    () =>
      load(
        folder(Q3, 'step', {
          config: (c) => {
            c.decoder_sparse_step = 2;
            delete c.intermediate_size;
          },
        }),
      ),
    /field 'intermediate_size' is missing, but layers 0 are dense/,
  );
});

test('qwen-ts quantize refuses a MoE model rather than writing a file llama.cpp would misread', () => {
  const { source, config } = openModelFiles(Q3);
  try {
    expectError(() => convertToGguf(source, 'hf', config, null, 'q8_0', 'x', []), /writing a GGUF of a mixture-of-experts model \(qwen3_moe\) is not implemented yet/);
  } finally {
    source.close();
  }
});
