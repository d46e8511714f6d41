#!/usr/bin/env python3
"""Golden data for ctdl::models::gpt2 against transformers' GPT2LMHeadModel (tests/test_gpt2.cpp).

A tiny randomly initialised GPT-2 (vocab 97, n_positions 16, n_embd 32, n_head 4, n_layer 2,
every dropout 0, float32, seeded; layer norms and biases made non-trivial so that each
parameter matters), saved with save_pretrained into gpt2_tiny/ (config.json,
model.safetensors: the file the C++ test loads with ctdl::load as it is). It writes
gpt2_golden.safetensors next to this script:

  ids                 token ids [2, 16] (int64)
  logits              [2, 16, 97]
  loss                [1]: model(ids, labels=ids).loss (transformers shifts the labels)
  grad.<name>         d loss / d parameter, for every parameter (named_parameters: the tied
                      lm_head is transformer.wte.weight, its gradient the sum of both uses)
  prompt.<k>          greedy prompts (int64, lengths 1, 4 and 8)
  greedy.<k>          model.generate(prompt, do_sample=False, max_new_tokens=8): prompt + 8 tokens
  conv1d.*            transformers' Conv1D(nf=6, nx=5) alone on x [3, 5]: weight [5, 6], bias,
                      x, y, and the gradients of L = sum(y * r) (grad.weight, grad.bias, grad.x)
  ctdl_logits         logits of gpt2_ctdl/model.safetensors (a snapshot written by ctdl::save,
                      committed) loaded with from_pretrained, on `ids`: the other direction

Attention runs as "eager" (the written-out softmax); sdpa agrees to rounding.

The C++ test never runs Python. To regenerate (transformers 5, torch, safetensors):
  /work/venv/bin/python tests/golden/make_gpt2_golden.py
gpt2_ctdl/model.safetensors is written by ctdl (regenerate it first if ctdl's gpt2 init
changes: build test_gpt2, then run  build/dev/tests/test_gpt2 "[.write_ctdl_snapshot]").
"""
import os
import shutil
import tempfile

import torch
from safetensors.torch import save_file, load_file
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

here = os.path.dirname(os.path.abspath(__file__))
tiny = os.path.join(here, "gpt2_tiny")
ctdl_dir = os.path.join(here, "gpt2_ctdl")

V, CTX, D, H, L = 97, 16, 32, 4, 2
B, T = 2, 16
NEW = 8

config = GPT2Config(vocab_size=V, n_positions=CTX, n_embd=D, n_head=H, n_layer=L, resid_pdrop=0.0,
                    embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5, activation_function="gelu_new",
                    tie_word_embeddings=True, bos_token_id=0, eos_token_id=0, pad_token_id=0)
config._attn_implementation = "eager"

torch.manual_seed(20261212)
model = GPT2LMHeadModel(config).eval()
with torch.no_grad():  # non-trivial layer norms and biases (transformers starts them at 1 and 0)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.copy_(0.02 * torch.randn_like(p))
        elif ".ln_" in name:
            p.copy_(1 + 0.1 * torch.randn_like(p))
    # larger weights than 0.02 so the logits spread and the greedy choices are clear
    for name, p in model.named_parameters():
        if name.endswith("weight") and ".ln_" not in name:
            p.mul_(8.0)
assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()

os.makedirs(tiny, exist_ok=True)
model.save_pretrained(tiny, safe_serialization=True)
for f in os.listdir(tiny):
    if f not in ("config.json", "model.safetensors", "generation_config.json"):
        os.remove(os.path.join(tiny, f))

gen = torch.Generator().manual_seed(5)
ids = torch.randint(0, V, (B, T), generator=gen)
out = model(ids, labels=ids)
out.loss.backward()

data = {"ids": ids, "logits": out.logits.detach().contiguous(), "loss": out.loss.detach().reshape(1)}
names = []
for name, p in model.named_parameters():
    data["grad." + name] = p.grad.detach().clone().contiguous()
    names.append(name)

min_gap = float("inf")
for k, n in enumerate((1, 4, 8)):
    prompt = torch.randint(0, V, (1, n), generator=gen)
    with torch.no_grad():
        seq = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=NEW,
                             min_new_tokens=NEW)
        logits = model(seq).logits[0]
    for t in range(n - 1, n + NEW - 1):  # how clear each greedy choice was
        top = torch.topk(logits[t], 2).values
        min_gap = min(min_gap, (top[0] - top[1]).item())
        assert logits[t].argmax().item() == seq[0, t + 1].item()
    data[f"prompt.{k}"] = prompt[0].contiguous()
    data[f"greedy.{k}"] = seq[0].contiguous()

if os.path.exists(os.path.join(ctdl_dir, "model.safetensors")):
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(os.path.join(tiny, "config.json"), d)
        shutil.copy(os.path.join(ctdl_dir, "model.safetensors"), d)
        loaded = GPT2LMHeadModel.from_pretrained(d, attn_implementation="eager").eval()
        assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()
        ref = load_file(os.path.join(ctdl_dir, "model.safetensors"))
        for k, v in loaded.state_dict().items():
            if k in ref:
                assert torch.equal(ref[k], v), k
        assert set(ref) == {n for n in names}, sorted(set(ref) ^ set(names))
        with torch.no_grad():
            data["ctdl_logits"] = loaded(ids).logits.contiguous()
    print("ctdl snapshot loads with from_pretrained: all", len(ref), "tensors equal")
else:
    print("no gpt2_ctdl/model.safetensors yet: ctdl_logits not written")

torch.manual_seed(3)
conv = Conv1D(6, 5)
with torch.no_grad():
    conv.weight.normal_(0, 0.5)
    conv.bias.normal_(0, 0.5)
cx = torch.randn(3, 5, requires_grad=True)
cy = conv(cx)
cr = torch.randn(3, 6)
(cy * cr).sum().backward()
data.update({"conv1d.weight": conv.weight.detach().clone(), "conv1d.bias": conv.bias.detach().clone(),
             "conv1d.x": cx.detach().clone(), "conv1d.y": cy.detach().clone(), "conv1d.r": cr,
             "conv1d.grad.weight": conv.weight.grad.clone(), "conv1d.grad.bias": conv.bias.grad.clone(),
             "conv1d.grad.x": cx.grad.clone()})

path = os.path.join(here, "gpt2_golden.safetensors")
# state_dict order (the file itself stores its tensors sorted by name)
save_file(data, path, metadata={"state_dict": ",".join(model.state_dict().keys())})
stored = load_file(os.path.join(tiny, "model.safetensors"))
print("save_pretrained tensors:", list(stored))
print("state_dict order:", [k for k in model.state_dict()])
print("loss", out.loss.item(), "min greedy top-2 gap", min_gap, "golden bytes", os.path.getsize(path),
      "model bytes", os.path.getsize(os.path.join(tiny, "model.safetensors")))
