"""Encode throughput of the Hugging Face `tokenizers` library, one thread, the same text
and tokenizer.json as benchmarks/bpe_throughput.cpp (run both with benchmarks/run_bpe.sh)."""
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

tok = Tokenizer.from_file(sys.argv[1])
unit = open(sys.argv[2], encoding="utf-8").read()
want = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
text = unit
while len(text.encode()) < want:
    text += unit
size = len(text.encode())
best = 1e30
for _ in range(5):
    t0 = time.perf_counter()
    n = len(tok.encode(text).ids)
    best = min(best, time.perf_counter() - t0)
print(f"tokenizers one string: {size} bytes -> {n} tokens, best {best:.4f} s, {size / best / 1e6:.1f} MB/s")
lines = text.splitlines(keepends=True)
best = 1e30
for _ in range(5):
    t0 = time.perf_counter()
    n = sum(len(e.ids) for e in tok.encode_batch(lines))  # RAYON_NUM_THREADS=1: one thread
    best = min(best, time.perf_counter() - t0)
print(f"tokenizers {len(lines)} lines:  {size} bytes -> {n} tokens, best {best:.4f} s, {size / best / 1e6:.1f} MB/s")
