#!/usr/bin/env python3
"""PEFT's own logits for test/fixtures/lora's adapters (written by qwen.ts's writePeftAdapter):
transformers + PEFT load each model folder in float64 and the adapter with PeftModel.from_pretrained,
and the logits at every position of the prompt are written as <name>.peft.f32 next to llama.cpp's.
So the tests check the PEFT writer against PEFT itself, and the forward pass against PyTorch.
Run once (needs torch, transformers, peft, e.g. pip install torch==2.13.0+cpu transformers==5.17.0 peft==0.21.0
in a virtual environment outside the repository); the tests read the committed files.
usage: python3 scripts/lora-peft-logits.py"""
import json, os, sys
import numpy as np
import torch
import transformers, peft
from transformers import AutoModelForCausalLM
from peft import PeftModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')
PROMPT = [1, 17, 42, 99, 7, 250, 3, 64]  # test/lora/cases.ts LORA_PROMPT
CASES = [('qwen2-all7', 'qwen2-tiny-tied'), ('qwen2-rslora', 'qwen2-tiny-tied'), ('qwen3-all7', 'qwen3-tiny-tied'), ('qwen3-rslora', 'qwen3-tiny-tied'), ('qwen35-all7', 'qwen35-tiny-tied')]
lines = []
for name, model in CASES:
    base = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, 'models', model), torch_dtype=torch.float64)
    m = PeftModel.from_pretrained(base, os.path.join(ROOT, 'lora', name)).eval()
    with torch.no_grad():
        logits = m(torch.tensor([PROMPT])).logits[0].numpy()
    logits.astype('<f4').tofile(os.path.join(ROOT, 'lora', f'{name}.peft.f32'))
    want = np.fromfile(os.path.join(ROOT, 'lora', f'{name}.llama.f32'), dtype='<f4').reshape(len(PROMPT), -1)
    d = float(np.abs(logits - want).max())
    lines.append(f'- {name}.peft.f32: PEFT {peft.__version__} + transformers {transformers.__version__} (torch {torch.__version__}, float64) on models/{model} (HF folder), max |diff| vs llama.cpp {d:.1e}')
    print(lines[-1])
with open(os.path.join(ROOT, 'lora', 'PROVENANCE.md'), 'a') as f:
    f.write('\n' + '\n'.join(lines) + '\n')

# An adapter made and saved by PEFT itself (what the reader must take as PEFT writes it): all seven modules
# on layer 1 only, a rank_pattern and an alpha_pattern, B drawn at random (PEFT starts it at zero).
torch.manual_seed(7)
base = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, 'models', 'qwen3-tiny-tied'), torch_dtype=torch.float64)
cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], layers_to_transform=[1], rank_pattern={'down_proj': 2}, alpha_pattern={'self_attn.q_proj': 3})
m = peft.get_peft_model(base, cfg)
with torch.no_grad():
    for n, p in m.named_parameters():
        if 'lora_' in n:
            p.copy_((torch.rand_like(p) * 0.6 - 0.3).float().double())  # f32 values: saved as F32 below, exactly
m.eval()
with torch.no_grad():
    m(torch.tensor([PROMPT])).logits[0].numpy().astype('<f4').tofile(os.path.join(ROOT, 'lora', 'peft-made-qwen3.peft.f32'))
out = os.path.join(ROOT, 'lora', 'peft-made-qwen3')
m.to(torch.float32).save_pretrained(out)
os.remove(os.path.join(out, 'README.md'))  # PEFT's model card template
line = f"- peft-made-qwen3/ and peft-made-qwen3.peft.f32: made and saved by PEFT {peft.__version__} (get_peft_model, {cfg.target_modules!r}, layers_to_transform [1], rank_pattern {{'down_proj': 2}}, alpha_pattern {{'self_attn.q_proj': 3}}, A and B uniform in [-0.3, 0.3), seed 7) on models/qwen3-tiny-tied, and its float64 logits"
print(line)
with open(os.path.join(ROOT, 'lora', 'PROVENANCE.md'), 'a') as f:
    f.write(line + '\n')
