import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensors_writer.js';
import { patternValue, peftTargets, parsePeftConfig, readPeftAdapter, writePeftAdapter } from '../../src/lora/peft.js';
import { checkAdapter } from '../../src/lora/targets.js';
import { parseHfConfig } from '../../src/models/config.js';
import { expectError, FIXTURES, tmpDir } from '../helpers.js';
import { randomAdapter } from './util.js';

const config = () => {
  const f = path.join(FIXTURES, 'models/qwen3-tiny-tied/config.json');
  return parseHfConfig(JSON.parse(fs.readFileSync(f, 'utf8')), f);
};

test('PEFT adapter: write then read gives the same modules, names and scales', () => {
  const c = config();
  const a = randomAdapter(c, { r: 4, alpha: 16, rslora: true, ranks: { 'model.layers.1.mlp.down_proj': 2 } });
  a.config.base_model_name_or_path = 'Qwen/Qwen3-0.6B';
  const dir = tmpDir();
  writePeftAdapter(dir, a);
  const j = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(j.peft_type, 'LORA');
  assert.deepEqual(j.rank_pattern, { 'model.layers.1.mlp.down_proj': 2 });
  assert.deepEqual(j.alpha_pattern, {});
  assert.deepEqual(j.target_modules, ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
  assert.deepEqual(Object.keys(j), Object.keys(j).sort(), 'keys sorted as PEFT writes them');
  const st = openSafetensors(path.join(dir, 'adapter_model.safetensors'));
  assert.deepEqual(st.tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')?.shape, [4, c.hidden_size]);
  assert.deepEqual(st.tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight')?.shape, [c.hidden_size, 2]);
  st.close();
  const b = readPeftAdapter(dir, 'x');
  assert.equal(b.name, 'x');
  assert.equal(b.config.base_model_name_or_path, 'Qwen/Qwen3-0.6B');
  assert.equal(b.modules.length, a.modules.length);
  for (const m of a.modules) {
    const n = b.modules.find((x) => x.name === m.name)!;
    assert.ok(n, m.name);
    assert.equal(n.r, m.r);
    assert.ok(Math.abs(n.scale - m.scale) < 1e-12, `${m.name} scale ${n.scale} vs ${m.scale}`);
    assert.deepEqual(n.a, m.a);
    assert.deepEqual(n.b, m.b);
  }
  assert.equal(b.modules.find((x) => x.name === 'model.layers.1.mlp.down_proj')!.scale, 16 / Math.sqrt(2));
  checkAdapter(c, b);
  // a file path or the config path finds the same adapter
  assert.equal(readPeftAdapter(path.join(dir, 'adapter_model.safetensors')).modules.length, a.modules.length);
});

test('PEFT target matching: names, suffixes, regex, layers_to_transform, rank and alpha patterns', () => {
  const c = parsePeftConfig('c.json', JSON.stringify({ r: 8, lora_alpha: 16, target_modules: ['q_proj', 'mlp.up_proj'], layers_to_transform: [1] }));
  assert.equal(peftTargets(c, 'model.layers.1.self_attn.q_proj'), true);
  assert.equal(peftTargets(c, 'model.layers.0.self_attn.q_proj'), false);
  assert.equal(peftTargets(c, 'model.layers.1.mlp.up_proj'), true);
  assert.equal(peftTargets(c, 'model.layers.1.self_attn.k_proj'), false);
  const re = parsePeftConfig('c.json', JSON.stringify({ target_modules: '.*\\.(q|v)_proj' }));
  assert.equal(peftTargets(re, 'model.layers.3.self_attn.v_proj'), true);
  assert.equal(peftTargets(re, 'model.layers.3.self_attn.k_proj'), false);
  assert.equal(peftTargets(parsePeftConfig('c.json', '{"target_modules": "all-linear"}'), 'model.layers.3.mlp.down_proj'), true);
  assert.equal(patternValue({ 'layers.1.self_attn.q_proj': 2, down_proj: 3 }, 'model.layers.1.self_attn.q_proj'), 2);
  assert.equal(patternValue({ 'layers.1.self_attn.q_proj': 2 }, 'model.layers.11.self_attn.q_proj'), undefined);
  assert.equal(patternValue({ down_proj: 3 }, 'model.layers.1.mlp.down_proj'), 3);
  assert.equal(patternValue({ proj: 3 }, 'model.layers.1.mlp.down_proj'), undefined, 'a key matches whole name parts');
});

test('PEFT adapter: bad configs and files are one-line errors naming the problem', () => {
  const c = config();
  const dir = tmpDir();
  writePeftAdapter(dir, randomAdapter(c, { targets: ['q_proj'] }));
  const cfg = path.join(dir, 'adapter_config.json');
  const base = JSON.parse(fs.readFileSync(cfg, 'utf8'));
  const withConfig = (patch: Record<string, unknown>, re: RegExp) => {
    fs.writeFileSync(cfg, JSON.stringify({ ...base, ...patch }));
    expectError(() => readPeftAdapter(dir), re);
  };
  withConfig({ modules_to_save: ['lm_head'] }, /modules_to_save is '\["lm_head"\]'/);
  withConfig({ r: 0 }, /r \(the LoRA rank\) must be a positive integer, got 0/);
  withConfig({ use_dora: true }, /DoRA/);
  withConfig({ bias: 'all' }, /bias is 'all'/);
  withConfig({ fan_in_fan_out: true }, /fan_in_fan_out/);
  withConfig({ peft_type: 'IA3' }, /peft_type is 'IA3'/);
  withConfig({ r: 8 }, /has rank 4, but .* gives it rank 8/);
  withConfig({ target_modules: ['k_proj'] }, /is not one that .*target_modules/);
  withConfig({ target_modules: ['q_proj', 'qkv'] }, /target_modules names 'qkv', which no Qwen model has/);
  fs.writeFileSync(cfg, JSON.stringify(base));
  // shapes that do not fit the base model
  const other = randomAdapter({ ...c, hidden_size: c.hidden_size * 2 }, { targets: ['q_proj'] });
  expectError(() => checkAdapter(c, other), /module 'model\.layers\.0\.self_attn\.q_proj' is \[\d+, 128\] .* but the model's weight is \[\d+, 64\]/);
  // a module Qwen3 does not have
  const odd = randomAdapter(c, { targets: ['q_proj'] });
  odd.modules[0] = { ...odd.modules[0]!, name: 'model.layers.0.self_attn.qkv_proj', target: 'qkv_proj' };
  expectError(() => checkAdapter(c, odd), /qwen3 models have no 'qkv_proj' module/);
  // a tensor that is not LoRA A/B, and an A without its B
  const st = path.join(dir, 'adapter_model.safetensors');
  writeSafetensors(st, [{ name: 'base_model.model.lm_head.weight', dtype: 'F32', shape: [1, 1], data: new Uint8Array(4) }]);
  expectError(() => readPeftAdapter(dir), /tensor 'base_model\.model\.lm_head\.weight' is not a LoRA A or B matrix/);
  writeSafetensors(st, [{ name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', dtype: 'F32', shape: [4, 1], data: new Uint8Array(16) }]);
  expectError(() => readPeftAdapter(dir), /has lora_A but no lora_B/);
  expectError(() => readPeftAdapter(path.join(dir, 'nope')), /no such file or folder/);
  fs.rmSync(cfg);
  expectError(() => readPeftAdapter(dir), /no adapter_config\.json in this folder/);
});
