"""PyTorch + peft peer of benchmarks/bench_finetune.cpp: the same fine-tuning step, float32,
with LoRA (peft) and with full fine-tuning, on the same two models.

Models (random init):
  pretrain  the pretraining example's GPT (vocab 1024, context 64, width 128, 4 heads, 4 blocks,
            MLP 512): peers/torch_gpt.py's module, whose names are ctdl::models::gpt's, so
            target_modules=["qkv", "proj"] adapts exactly every block's attention projections;
            batch 16 x 64 tokens
  gpt2      transformers' GPT2LMHeadModel(GPT2Config(vocab 50257, n_positions 1024, n_embd 768,
            n_layer 12, n_head 12, dropouts 0)); target_modules=["attn.c_attn", "attn.c_proj"],
            fan_in_fan_out=True (Conv1D); batch 1 x 256 tokens
LoRA: peft.get_peft_model(net, LoraConfig(r=8, lora_alpha=16, lora_dropout=0, target_modules=...)):
      the base frozen, lora_A / lora_B train. Full: every parameter trains.
Step: opt.zero_grad(set_to_none=True); loss = F.cross_entropy(logits.view(-1, V), y.view(-1));
      loss.backward(); opt.step()   (AdamW over the trainable parameters, lr 1e-4, otherwise
      PyTorch's defaults: betas 0.9/0.999, eps 1e-8, weight decay 0.01)
Data: token ids and targets [B, T] uniform in [0, V). tokens/s = B·T / step time.

Memory, after a step: grad_bytes = the sizes of every p.grad; state_bytes = every tensor in
opt.state (exp_avg, exp_avg_sq and the per-parameter 'step' scalar, which PyTorch keeps as a
float32 tensor: 4 bytes per parameter tensor); adapter_bytes = the lora_A / lora_B parameters.

PyTorch is given every chance; each case's figure is its best over:
  * threads 1 and 2 (torch.set_num_threads, OMP_NUM_THREADS, MKL_NUM_THREADS; each thread
    count in its own process), with OMP_WAIT_POLICY default and PASSIVE at 2 threads;
  * form: eager, and torch.compile(model) (inductor, its C++ CPU backend; the optimizer eager);
  * attention: the pretraining GPT's written-out attention and F.scaled_dot_product_attention;
    GPT-2 with transformers' "sdpa" (its default) and "eager" implementations;
  * optimizer: AdamW's default (a per-tensor loop on CPU), foreach=True and fused=True;
  * MKL's code path: PyPI torch does its float32 GEMMs in oneMKL, which on a non-Intel CPU
    takes a slower path than the CPU supports (here 39 against 94 GFLOP/s for a 256 x 768 x 3072
    sgemm, one thread): "mkl intel" runs the worker with a one-line shim preloaded that answers
    MKL's vendor check (mkl_serv_intel_cpu_true) with yes, so it uses its AVX-512 kernels, as
    the OpenBLAS peers force OPENBLAS_CORETYPE (built with cc at run time; skipped without one).
A whole sweep here (2 cores shared with other jobs, load 3-5; tokens/s, LoRA at 1 thread):
  pretrain  mkl intel: compile + sdpa 26.6k, eager + sdpa 26.0k, eager + written 23.0k;
            mkl vendor: compile + sdpa 14.9k, eager + sdpa 14.5k; every 2-thread case <= 17.0k
            (PASSIVE ahead); full fine-tuning likewise (intel 22.3k best, vendor 12.2k)
  gpt2      mkl intel: sdpa 239, eager attention 230; mkl vendor 130-185; compile 283 against
            eager 282 (another minute); full fine-tuning: intel 141-163, vendor 76-93
  the optimizers (loop, foreach, fused) change the best by no more than the noise, except for
  GPT-2's full fine-tuning at 2 threads, where foreach was far behind.
benchmarks/run_finetune.sh runs the settings that won (mkl intel; sdpa for the pretraining GPT, both
attentions for GPT-2, whose two were within the noise; adamw loop and fused).
The flags narrow this grid (--forms, --attention, --optimizers, --mkl, --threads, --models);
with torch.compile only --compile-attention and --compile-optimizers are tried (compiling
takes ~30-70 s a case here, and the optimizer stays eager, so its best is the eager one's).

Needs PyPI torch 2.x + peft + transformers (/work/venv/bin/python); Debian's python3-torch
1.13 has no peft (and no scaled_dot_product_attention or a working inductor on CPU).
Prints JSON on stdout: {"torch", "peft", "transformers", "cases": [{model, mode, threads, setting,
tok_s, us, grad_bytes, state_bytes, adapter_bytes, trainable, params}]}; progress on stderr.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import time

import torch_gpt  # peers/torch_gpt.py: the pretraining GPT's module

SHAPES = {
    "pretrain": dict(vocab=1024, batch=16, tokens=64, targets=["qkv", "proj"]),
    "gpt2": dict(vocab=50257, batch=1, tokens=256, targets=["attn.c_attn", "attn.c_proj"]),
}
ATTENTION = {"pretrain": ["written", "sdpa"], "gpt2": ["sdpa", "eager"]}
OPTIMIZERS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def intel_shim():
    """A shared library whose mkl_serv_intel_cpu_true() returns 1 (MKL asks it whether the CPU
    is Intel's before it picks its kernels), built once in the temporary folder; None without cc."""
    import shutil
    import tempfile
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        print("peft_step: no C compiler, the MKL-intel setting is skipped", file=sys.stderr)
        return None
    d = tempfile.mkdtemp(prefix="peft_step.")
    src, lib = os.path.join(d, "mkl_intel.c"), os.path.join(d, "libmkl_intel.so")
    with open(src, "w") as f:
        f.write("int mkl_serv_intel_cpu_true(void) { return 1; }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", lib, src], check=True)
    return lib


def time_steps(step, repeats, repeat_s, warmup=2):
    """Warm up (and compile), time one step, then `repeats` runs of about repeat_s seconds
    each (at least one step); the median of their per-step times, in microseconds."""
    import statistics
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    step()
    iters = max(1, int(repeat_s / (time.perf_counter() - t0)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times) * 1e6


def build(model, attention):
    import torch
    if model == "pretrain":
        return torch_gpt.gpt_factory(sdpa=attention == "sdpa", vocab=SHAPES["pretrain"]["vocab"])()
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel
    transformers.logging.set_verbosity_error()
    cfg = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    cfg._attn_implementation = attention
    net = GPT2LMHeadModel(cfg)

    class Logits(torch.nn.Module):  # the logits only (the loss is the step's, as in ctdl)
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(input_ids=x, use_cache=False).logits
    return Logits(net)


def worker(args):
    import torch
    import torch.nn.functional as F
    import peft

    torch.set_num_threads(args.threads)
    model, form = args.models, args.forms
    shape = SHAPES[model]
    v, b, t = shape["vocab"], shape["batch"], shape["tokens"]
    g = torch.Generator().manual_seed(1234)
    x = torch.randint(0, v, (b, t), generator=g)
    y = torch.randint(0, v, (b, t), generator=g)
    results = []
    compiled = form == "compile"
    for attention in (args.compile_attention if compiled else args.attention).split(","):
        if attention not in ATTENTION[model]:
            continue
        for mode in args.modes.split(","):
            for opt_name in (args.compile_optimizers if compiled else args.optimizers).split(","):
                torch.manual_seed(7)
                net = build(model, attention)
                if mode == "lora":
                    cfg = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=shape["targets"],
                                          fan_in_fan_out=model == "gpt2", bias="none")
                    net = peft.get_peft_model(net, cfg)
                net.train()
                params = [p for p in net.parameters() if p.requires_grad]
                opt = torch.optim.AdamW(params, lr=1e-4, **OPTIMIZERS[opt_name])
                run = torch.compile(net) if form == "compile" else net

                def step():
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(run(x).view(-1, v), y.view(-1))
                    loss.backward()
                    opt.step()

                t0 = time.perf_counter()
                try:
                    us = time_steps(step, args.repeats, args.repeat_s)
                except Exception as e:  # a form this version cannot run: say so, go on
                    print(f"peft_step: {model} {mode} {form} {attention} {opt_name} failed: {e}", file=sys.stderr)
                    continue
                grad = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
                state = sum(s.numel() * s.element_size() for st in opt.state.values() for s in st.values()
                            if torch.is_tensor(s))
                adapter = sum(p.numel() * p.element_size() for n, p in net.named_parameters() if "lora_" in n)
                setting = f"{form}, {attention} attention, adamw {opt_name}, mkl {args.mkl}" + (
                    f", OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}" if "OMP_WAIT_POLICY" in os.environ else "")
                r = dict(model=model, mode=mode, threads=args.threads, setting=setting, us=us, tok_s=b * t / (us * 1e-6),
                         grad_bytes=grad, state_bytes=state, adapter_bytes=adapter,
                         trainable=sum(p.numel() for p in params), params=sum(p.numel() for p in net.parameters()))
                print(f"peft_step: {model} {mode} {args.threads}T {setting}: {r['tok_s']:.0f} tok/s "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
                results.append(r)
                del net, opt, run, params
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="pretrain,gpt2")
    ap.add_argument("--modes", default="lora,full")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--forms", default="eager,compile")
    ap.add_argument("--attention", default="written,sdpa,eager", help="pretrain: written,sdpa; gpt2: sdpa,eager")
    ap.add_argument("--optimizers", default="loop,foreach,fused")
    ap.add_argument("--compile-attention", default="sdpa", help="attention forms tried with torch.compile")
    ap.add_argument("--compile-optimizers", default="fused", help="optimizers tried with torch.compile")
    ap.add_argument("--mkl", default="vendor,intel", help="MKL's code path: vendor (its own choice), intel (forced)")
    ap.add_argument("--passive", default="both", help="OMP_WAIT_POLICY=PASSIVE at 2+ threads: both, yes, no")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--repeat-s", type=float, default=0.3, help="seconds per repeat (at least 2 steps each)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        json.dump(worker(args), sys.stdout)
        return

    cases = []
    shim = intel_shim() if "intel" in args.mkl.split(",") else None
    for model in args.models.split(","):
        for t in [int(s) for s in args.threads.split(",")]:
            waits = [None]
            if t > 1:
                waits = {"both": [None, "PASSIVE"], "yes": ["PASSIVE"], "no": [None]}[args.passive]
            for wait, mkl, form in itertools.product(waits, args.mkl.split(","), args.forms.split(",")):
                env = dict(os.environ, OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
                if wait:
                    env["OMP_WAIT_POLICY"] = wait
                if mkl == "intel":
                    if not shim:
                        continue
                    env["LD_PRELOAD"] = shim
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--models", model, "--threads", str(t),
                       "--forms", form, "--modes", args.modes, "--attention", args.attention,
                       "--optimizers", args.optimizers, "--compile-attention", args.compile_attention,
                       "--compile-optimizers", args.compile_optimizers, "--mkl", mkl,
                       "--repeats", str(args.repeats), "--repeat-s", str(args.repeat_s)]
                out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
                if out.returncode != 0:
                    print(f"peft_step: {model} {t} threads {form} mkl {mkl} failed (exit {out.returncode})", file=sys.stderr)
                    continue
                cases += json.loads(out.stdout)

    if shim:
        import shutil
        shutil.rmtree(os.path.dirname(shim), ignore_errors=True)
    import peft
    import torch
    import transformers
    print(json.dumps({"torch": torch.__version__, "peft": peft.__version__, "transformers": transformers.__version__,
                      "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
