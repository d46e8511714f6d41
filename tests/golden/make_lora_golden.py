#!/usr/bin/env python3
"""Golden data for ctdl's LoRA adapters (nn::lora, ctdl::with_lora, lora::save_adapter /
load_adapter) against peft on transformers' GPT-2 (tests/test_finetune.cpp).

The base is the tiny GPT-2 of make_gpt2_golden.py (gpt2_tiny/, committed). peft adapts every
attention c_attn and c_proj (target_modules ["attn.c_attn", "attn.c_proj"], r 4, alpha 8, no
dropout; GPT-2's Conv1D, so fan_in_fan_out). lora_A is peft's own initialisation and lora_B,
which peft starts at zero, is set to seeded random values so that the adapters change the
output. Written next to this script:

  lora_peft/adapter_model.safetensors, adapter_config.json   peft's save_pretrained
  lora_golden.safetensors:
    ids        token ids [2, 16] (int64)
    logits     the adapted model's logits [2, 16, 97]
    loss       [1]: model(ids, labels=ids).loss
    grad.<n>   d loss / d adapter parameter, named as ctdl names it
               (transformer.h.0.attn.c_attn.lora_A.weight, ...)
    ctdl_logits  logits of lora_ctdl/ (an adapter written by ctdl::lora::save_adapter,
               committed) loaded onto gpt2_tiny with PeftModel.from_pretrained: the other way

The C++ test never runs Python. To regenerate (transformers 5, peft, torch, safetensors):
  /work/venv/bin/python tests/golden/make_lora_golden.py
lora_ctdl/ is written by ctdl: build test_finetune, then run
  build/dev/tests/test_finetune "[.write_ctdl_adapter]"   (then this script again)
"""
import json
import os

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import GPT2LMHeadModel

here = os.path.dirname(os.path.abspath(__file__))
tiny = os.path.join(here, "gpt2_tiny")
peft_dir = os.path.join(here, "lora_peft")
ctdl_dir = os.path.join(here, "lora_ctdl")
PREFIX = "base_model.model."


def base():
    return GPT2LMHeadModel.from_pretrained(tiny, attn_implementation="eager").eval()


torch.manual_seed(20261202)
config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["attn.c_attn", "attn.c_proj"],
                    fan_in_fan_out=True, bias="none", task_type="CAUSAL_LM")
model = get_peft_model(base(), config)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.copy_(0.5 * torch.randn_like(p))
model.eval()
model.save_pretrained(peft_dir, safe_serialization=True)
for f in os.listdir(peft_dir):
    if f not in ("adapter_model.safetensors", "adapter_config.json"):
        os.remove(os.path.join(peft_dir, f))

gen = torch.Generator().manual_seed(7)
ids = torch.randint(0, 97, (2, 16), generator=gen)
out = model(ids, labels=ids)
out.loss.backward()
data = {"ids": ids, "logits": out.logits.detach().contiguous(), "loss": out.loss.detach().reshape(1)}
trainable = 0
for name, p in model.named_parameters():
    if p.requires_grad:
        trainable += 1
        ctdl_name = name[len(PREFIX):].replace(".default", "")
        data["grad." + ctdl_name] = p.grad.detach().clone().contiguous()
    else:
        assert p.grad is None, name
assert trainable == 2 * 2 * 2, trainable  # 2 blocks x (c_attn, c_proj) x (A, B)

# The file peft wrote holds exactly those tensors, under base_model.model.<ctdl name>.
saved = load_file(os.path.join(peft_dir, "adapter_model.safetensors"))
assert {PREFIX + k[len("grad."):] for k in data if k.startswith("grad.")} == set(saved), sorted(saved)

if os.path.exists(os.path.join(ctdl_dir, "adapter_model.safetensors")):
    loaded = PeftModel.from_pretrained(base(), ctdl_dir).eval()
    ref = load_file(os.path.join(ctdl_dir, "adapter_model.safetensors"))
    state = loaded.state_dict()
    for k, v in ref.items():
        key = k.replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default.")
        assert torch.equal(state[key], v), k
    with torch.no_grad():
        data["ctdl_logits"] = loaded(ids).logits.contiguous()
    print("ctdl adapter loads with PeftModel.from_pretrained:", len(ref), "tensors equal;",
          json.load(open(os.path.join(ctdl_dir, "adapter_config.json")))["target_modules"])
else:
    print("no lora_ctdl/ yet: ctdl_logits not written")

save_file(data, os.path.join(here, "lora_golden.safetensors"))
print("wrote", len(data), "tensors; loss", out.loss.item())
