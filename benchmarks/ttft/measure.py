#!/usr/bin/env python3
"""Times inference binaries (ctdl_add_inference_binary) from exec to their first token.

  measure.py RUNS PROMPT_TOKENS COLD NAME=BINARY[,FILE...] ...

For each binary, RUNS runs with a warm page cache (after one unmeasured run) and, unless
COLD is "none", RUNS with a cold one: before each, the binary's files (its executable and
the FILEs it reads: a mapped snapshot, a tokenizer) are evicted from the page cache with
posix_fadvise(POSIX_FADV_DONTNEED) (COLD=fadvise) or every clean page of the machine is
dropped (COLD=drop: echo 3 > /proc/sys/vm/drop_caches, root only); fincore reports what of
the files was still resident. Each run is

  BINARY --prompt-tokens PROMPT_TOKENS --max-new-tokens 1 --temperature 0 --stats --print-tokens

and `BINARY --help` is timed the same way (exec, the dynamic loader, static initialisation,
main's first lines and exit: what comes before the binary's own clock starts). Printed per
binary and cache state, the median (and min-max) of:
  help      exec -> exit of --help, ms
  in-proc   the --stats line's "first token: <ms> ms after start" (from static initialisation)
  ttft      help + in-proc: exec -> first token, ms
  exit      exec -> exit of the 1-token run, ms (ttft plus writing the output and teardown)
  cpu       user + system CPU time of the 1-token run, ms (on a shared machine the wall times
            also hold the time other processes had the cores)
  prefill   the --stats line's prefill time, ms: a session's first pass, so it includes packing
            the weights for decoding; the rest of in-proc is loading (mapping and checking the
            weights, their checksum, making the session and its KV cache)
  peak      the --stats line's peak memory, MiB
"""
import os
import re
import resource
import statistics
import subprocess
import sys
import time

STATS = re.compile(r"^prefill: (\d+) tokens in ([0-9.]+) ms; decode: (\d+) tokens in ([0-9.]+) ms \(([0-9.]+) tokens/s\); "
                   r"peak memory: ([0-9.]+) MiB; first token: ([0-9.]+) ms after start$")


def evict(files, cold):
    if cold == "drop":
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages are not evicted
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_mb(files):
    """MB of the files in the page cache (fincore), or None where fincore is missing."""
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *files],
                             capture_output=True, text=True, check=True).stdout.split()
        return sum(int(x) for x in out) / 1e6
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None


def cpu_ms():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1e3


def timed(cmd):
    c0 = cpu_ms()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    ms = (time.perf_counter() - t0) * 1e3
    p.cpu_ms = cpu_ms() - c0
    if p.returncode != 0:
        sys.exit(f"measure.py: {' '.join(cmd)} exited with {p.returncode}: {p.stderr.strip()}")
    return ms, p


def one_run(binary, prompt, files, cold):
    if cold != "none":
        evict(files, cold)
    res = resident_mb(files) if cold != "none" else None
    help_ms, _ = timed([binary, "--help"])
    if cold != "none":
        evict(files, cold)
    exit_ms, p = timed([binary, "--prompt-tokens", prompt, "--max-new-tokens", "1", "--temperature", "0", "--stats",
                        "--print-tokens"])
    m = STATS.match(p.stderr.strip().splitlines()[-1])
    if not m:
        sys.exit(f"measure.py: {binary}: no --stats line with a first token: {p.stderr.strip()}")
    if int(m[3]) != 0 or len(p.stdout.strip().split(",")) != len(prompt.split(",")) + 1:
        sys.exit(f"measure.py: {binary}: expected the prompt and one token, got {p.stdout.strip()}")
    inproc = float(m[7])
    return {"help": help_ms, "in-proc": inproc, "ttft": help_ms + inproc, "exit": exit_ms, "cpu": p.cpu_ms,
            "prefill": float(m[2]), "peak": float(m[6]), "resident": res}


def summary(values):
    med = statistics.median(values)
    return f"{med:9.1f} ({min(values):.1f}-{max(values):.1f})"


def main():
    runs, prompt, cold = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    specs = sys.argv[4:]
    cols = ["help", "in-proc", "ttft", "exit", "cpu", "prefill", "peak"]
    print(f"exec -> first token, {runs} runs each, prompt of {len(prompt.split(','))} tokens, 1 new token (greedy); "
          f"median (min-max), ms (peak memory MiB); cold cache: {cold}")
    print(f"{'binary':<14} {'cache':<5} " + " ".join(f"{c:>22}" for c in cols) + "  resident before (MB)")
    for spec in specs:
        name, rest = spec.split("=", 1)
        binary, *files = rest.split(",")
        files = [binary] + files
        for state in (["warm"] + ([] if cold == "none" else ["cold"])):
            mode = "none" if state == "warm" else cold
            if state == "warm":
                one_run(binary, prompt, files, "none")  # fills the page cache
            rows = [one_run(binary, prompt, files, mode) for _ in range(runs)]
            res = [r["resident"] for r in rows if r["resident"] is not None]
            resident = f"{max(res):.1f}" if res else ("-" if state == "warm" else "fincore missing")
            print(f"{name:<14} {state:<5} " + " ".join(f"{summary([r[c] for r in rows]):>22}" for c in cols) +
                  f"  {resident}", flush=True)


if __name__ == "__main__":
    main()
