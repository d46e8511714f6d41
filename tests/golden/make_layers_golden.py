#!/usr/bin/python3
"""Golden data for every ctdl layer against PyTorch: forward, MSE loss and all gradients.

Each case is one PyTorch module mirroring one ctdl architecture (tests/test_golden_layers.cpp),
float32, seeded weights, a fixed random input x and target. The loss is
torch.nn.functional.mse_loss(out, target) (mean). Writes, next to this script, one file per case:

  layers_<case>.safetensors
    param.<name>   the module's weights (state_dict names and layouts; the C++ test loads them
                   into the ctdl model with read_options{.prefix = "param."})
    x, target      the input and the MSE target
    out, loss      the module's output and the loss ([1])
    grad.<name>    dLoss/dparam for every trainable parameter (frozen ones have none)
    dx             dLoss/dx, the gradient at the model's input

Cases:
  activations  Linear, LayerNorm (weight 1 + 0.1 randn, bias 0.1 randn), GELU (exact),
               GELU(approximate='tanh'), Tanh, Sigmoid, Softmax(-1); x [6, 8]
  residual     Linear, two residual blocks (the second starts with a LayerNorm), a repeat of
               two (Linear, Sigmoid) blocks, Linear without bias; x [6, 8]
  frozen       Linear, ReLU, a frozen Linear (requires_grad=False), Tanh, Linear; x [2, 3, 8]
               (the leading axes are rows)

The C++ test never runs Python. To regenerate (Debian's python3-torch and python3-safetensors):
  /usr/bin/python3 tests/golden/make_layers_golden.py
"""
import os

import torch
from torch import nn
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))


class Residual(nn.Sequential):
    """ctdl::nn::residual<L...>: y = x + sequential<L...>(x), with no extra name level."""

    def forward(self, x):
        return x + super().forward(x)


def nontrivial_layer_norm(ln):
    with torch.no_grad():
        ln.weight.copy_(1 + 0.1 * torch.randn_like(ln.weight))
        ln.bias.copy_(0.1 * torch.randn_like(ln.bias))
    return ln


def write(name, net, x, target):
    x = x.clone().requires_grad_(True)
    out = net(x)
    loss = nn.functional.mse_loss(out, target)
    loss.backward()
    data = {"param." + k: v.detach().contiguous() for k, v in net.state_dict().items()}
    data.update({"x": x.detach(), "target": target, "out": out.detach(), "loss": loss.detach().reshape(1),
                 "dx": x.grad.detach().clone()})
    for k, p in net.named_parameters():
        if p.requires_grad:
            data["grad." + k] = p.grad.detach().clone()
    save_file(data, os.path.join(here, f"layers_{name}.safetensors"))
    print(name, "loss", loss.item(), "tensors", len(data))


def main():
    torch.manual_seed(20261130)

    # 1. sequential<linear<8,16>, layer_norm<16>, gelu_exact, linear<16,16>, gelu_tanh, linear<16,12>,
    #               tanh, linear<12,10>, sigmoid, linear<10,4>, softmax>
    net = nn.Sequential(
        nn.Linear(8, 16), nontrivial_layer_norm(nn.LayerNorm(16)), nn.GELU(),
        nn.Linear(16, 16), nn.GELU(approximate="tanh"),
        nn.Linear(16, 12), nn.Tanh(),
        nn.Linear(12, 10), nn.Sigmoid(),
        nn.Linear(10, 4), nn.Softmax(dim=-1))
    write("activations", net, torch.randn(6, 8), torch.rand(6, 4))

    # 2. sequential<linear<8,16>, residual<linear<16,16>, relu>, residual<layer_norm<16>, linear<16,16>, tanh>,
    #               repeat<2, sequential<linear<16,16>, sigmoid>>, linear<16,3,false>>
    net = nn.Sequential(
        nn.Linear(8, 16),
        Residual(nn.Linear(16, 16), nn.ReLU()),
        Residual(nontrivial_layer_norm(nn.LayerNorm(16)), nn.Linear(16, 16), nn.Tanh()),
        nn.Sequential(nn.Sequential(nn.Linear(16, 16), nn.Sigmoid()), nn.Sequential(nn.Linear(16, 16), nn.Sigmoid())),
        nn.Linear(16, 3, bias=False))
    write("residual", net, torch.randn(6, 8), torch.randn(6, 3))

    # 3. sequential<linear<8,16>, relu, frozen<linear<16,16>>, tanh, linear<16,3>>, input [2, 3, 8]
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
    net[2].requires_grad_(False)
    write("frozen", net, torch.randn(2, 3, 8), torch.randn(2, 3, 3))


if __name__ == "__main__":
    main()
