"""PyTorch transformers peer of bench_decode: batch-1 greedy generation with the KV cache,
prefill 32 tokens then 128 new ones, for GPT2LMHeadModel at the two shapes bench_decode
runs (random weights), at 1 and 2 threads, each in transformers' best form here: eager
generate (dynamic cache), a static cache, and a static cache with torch.compile.
Prints JSON: {"torch": ..., "transformers": ..., "cases": [{model, threads, setting,
prefill_ms, decode_tok_s}]}.  Usage: hf_decode.py [small|gpt2|all] [eager,static,compile]"""
import json, os, sys, time, warnings

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()

SHAPES = {
    # the pretraining example's width and depth, context 160
    "small": dict(vocab_size=96, n_positions=160, n_embd=128, n_layer=4, n_head=4, n_inner=512),
    "gpt2": dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),
}
PROMPT, NEW = 32, 128


def measure(model, setting, repeats):
    ids = torch.arange(PROMPT, dtype=torch.long).unsqueeze(0) % model.config.vocab_size
    kw = dict(do_sample=False, pad_token_id=0, eos_token_id=None)
    if setting != "eager":
        kw["cache_implementation"] = "static"
    with torch.inference_mode():
        # prefill: one forward over the prompt (and the first token from its logits)
        def prefill():
            return model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)
        def full():
            return model.generate(ids, max_new_tokens=NEW, min_new_tokens=NEW, **kw)
        prefill(); full()  # warm up (and compile)
        best_pre, best_full = float("inf"), float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter(); prefill(); t1 = time.perf_counter()
            full(); t2 = time.perf_counter()
            best_pre, best_full = min(best_pre, t1 - t0), min(best_full, t2 - t1)
    return best_pre * 1e3, (NEW - 1) / (best_full - best_pre)


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    settings = (sys.argv[2] if len(sys.argv) > 2 else "eager,static,compile").split(",")
    cases = []
    for name, shape in SHAPES.items():
        if which not in ("all", name):
            continue
        torch.manual_seed(0)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for setting in settings:
                model = GPT2LMHeadModel(GPT2Config(**shape, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)).eval()
                if setting == "compile":
                    model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
                try:
                    pre, tok_s = measure(model, setting, 3 if name == "gpt2" else 5)
                except Exception as e:  # a form this version cannot run: say so, go on
                    print(f"hf_decode: {name} {setting} at {threads} threads failed: {e}", file=sys.stderr)
                    continue
                cases.append(dict(model=name, threads=threads, setting=setting, prefill_ms=pre, decode_tok_s=tok_s))
                print(f"hf_decode: {name} {threads}T {setting}: prefill {pre:.2f} ms, decode {tok_s:.1f} tok/s",
                      file=sys.stderr)
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
