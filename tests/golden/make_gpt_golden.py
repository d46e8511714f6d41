#!/usr/bin/python3
"""Golden data for ctdl::models::gpt against PyTorch: logits, cross-entropy loss and the
gradient of every parameter, for one small GPT (tests/test_golden_gpt.cpp).

The PyTorch module mirrors ctdl::models::gpt<V, Ctx, D, H, L, Mlp> with the same state_dict
names (ctdl's parameter_table()):

  0.weight                 token embedding [V, D]            (nn.Embedding)
  1.weight                 learned positions [Ctx, D]        (x + P[:T])
  2.<l>.0.0.weight/bias    block l: ln1                       (nn.LayerNorm, eps 1e-5)
  2.<l>.0.1.qkv.*          attention: [q|k|v] = x Wqkvᵀ + b, heads = consecutive column
  2.<l>.0.1.proj.*           groups of width D/H within each third, scale 1/sqrt(D/H),
                             causal mask, softmax, then proj
  2.<l>.1.0.weight/bias    ln2
  2.<l>.1.1.weight/bias    Linear D -> Mlp, then GELU(approximate='tanh')
  2.<l>.1.3.weight/bias    Linear Mlp -> D
  3.weight/bias            final LayerNorm
  4.weight                 LM head Linear D -> V, no bias (untied)

Blocks are pre-norm residual: x = x + attn(ln1(x)); x = x + mlp(ln2(x)). The loss is
F.cross_entropy(logits.view(-1, V), y.view(-1)) (mean over B·T rows). float32, seeded weights
(layer norms non-trivial: weight 1 + 0.1 randn, bias 0.1 randn; Linear biases non-zero).

Writes gpt_small.safetensors next to this script:
  param.<name>   every parameter (state_dict names and layouts)
  x, y           token ids [B, T] and targets [B, T] (int64)
  logits         [B, T, V]
  loss           [1]
  grad.<name>    dLoss/dparam for every parameter

The C++ test never runs Python. To regenerate (Debian's python3-torch and python3-safetensors):
  /usr/bin/python3 tests/golden/make_gpt_golden.py
"""
import math
import os

import torch
from torch import nn
from torch.nn import functional as F
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))

V, CTX, D, H, L, MLP = 20, 12, 16, 4, 2, 32
B, T = 3, 12


class Residual(nn.Sequential):
    """ctdl::nn::residual<L...>: y = x + sequential<L...>(x), with no extra name level."""

    def forward(self, x):
        return x + super().forward(x)


class Positions(nn.Module):
    """ctdl::nn::position_embedding<Ctx, D>: y[b, t] = x[b, t] + P[t]."""

    def __init__(self, ctx, d):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(ctx, d))

    def forward(self, x):
        return x + self.weight[: x.shape[-2]]


class Attention(nn.Module):
    """ctdl::nn::causal_self_attention<D, H>, written out (no fused SDPA)."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in (q, k, v))  # [B, H, T, hd]
        s = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(hd))
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        s = s.masked_fill(mask, float("-inf"))
        o = torch.softmax(s, dim=-1) @ v  # [B, H, T, hd]
        return self.proj(o.transpose(1, 2).reshape(b, t, d))


def nontrivial_layer_norm(ln):
    with torch.no_grad():
        ln.weight.copy_(1 + 0.1 * torch.randn_like(ln.weight))
        ln.bias.copy_(0.1 * torch.randn_like(ln.bias))
    return ln


def block():
    return nn.Sequential(
        Residual(nontrivial_layer_norm(nn.LayerNorm(D)), Attention(D, H)),
        Residual(nontrivial_layer_norm(nn.LayerNorm(D)), nn.Linear(D, MLP), nn.GELU(approximate="tanh"),
                 nn.Linear(MLP, D)))


torch.manual_seed(20261201)
net = nn.Sequential(
    nn.Embedding(V, D),
    Positions(CTX, D),
    nn.Sequential(*[block() for _ in range(L)]),
    nontrivial_layer_norm(nn.LayerNorm(D)),
    nn.Linear(D, V, bias=False))

x = torch.randint(0, V, (B, T))
y = torch.randint(0, V, (B, T))
logits = net(x)
loss = F.cross_entropy(logits.view(-1, V), y.view(-1))
loss.backward()

data = {"param." + k: v.detach().contiguous() for k, v in net.state_dict().items()}
data.update({"x": x, "y": y, "logits": logits.detach().contiguous(), "loss": loss.detach().reshape(1)})
for k, p in net.named_parameters():
    data["grad." + k] = p.grad.detach().clone().contiguous()
path = os.path.join(here, "gpt_small.safetensors")
save_file(data, path)
print("loss", loss.item(), "tensors", len(data), "bytes", os.path.getsize(path))
for k in sorted(data):
    print(f"  {k:28s} {tuple(data[k].shape)}")
