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
CASES = [('qwen2-all7', 'qwen2-tiny-tied'), ('qwen2-rslora', 'qwen2-tiny-tied'), ('qwen3-all7', 'qwen3-tiny-tied'), ('qwen3-rslora', 'qwen3-tiny-tied')]
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
