"""What the PyTorch peers share: timing one step, and running the worker in every setting."""
import statistics
import time


def time_it(step, repeats, repeat_s, warmup=5, probe_s=0.1):
    """Warm up, estimate the time per call over probe_s seconds, then time `repeats` runs of
    about repeat_s seconds each; the median of their per-call times."""
    for _ in range(warmup):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < probe_s:
        step()
        n += 1
    per = (time.perf_counter() - t0) / n
    iters = max(warmup, int(repeat_s / per))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times) * 1e6


def thread_settings(threads, coretypes):
    """The environments a peer is tried in at `threads` threads: OpenBLAS's own pool at
    `threads` or 1 (GEMMs serial, torch's OpenMP for the rest), with and without
    OMP_WAIT_POLICY=PASSIVE (OpenMP workers sleep instead of spinning between ops, which on
    a loaded machine keeps them off the core the main thread needs), for each OpenBLAS core
    type (Debian's OpenBLAS 0.3.21 does not know Zen 5: see native_coretype)."""
    envs = [{"OPENBLAS_NUM_THREADS": str(threads)}]
    if threads > 1:
        envs += [{"OPENBLAS_NUM_THREADS": "1"}, {"OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
                 {"OPENBLAS_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}]
    return [dict(e, OPENBLAS_CORETYPE=c) for c in coretypes for e in envs]


def run_workers(script, args, coretypes):
    """Runs `script --worker` once per thread count, setting and interop choice (each in its
    own process: interop threads can only be set before any parallel work) and returns all
    their results, each with a "setting" naming how it was run."""
    import json
    import os
    import subprocess
    import sys
    runs = []
    for t in [int(s) for s in args.threads.split(",")]:
        for extra in thread_settings(t, coretypes):
            for interop in args.interop.split(","):
                env = dict(os.environ, OMP_NUM_THREADS=str(t), **extra)
                out = subprocess.run([sys.executable, os.path.abspath(script), "--worker", "--threads", str(t),
                                      "--interop", interop, "--repeats", str(args.repeats),
                                      "--repeat-s", str(args.repeat_s)],
                                     env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
                tag = " ".join(f"{k}={v}" for k, v in extra.items())
                for r in json.loads(out):
                    r["setting"] = f"{r['variant']}, {r['interop']} {tag}".strip()
                    runs.append(r)
    return runs


def native_coretype():
    """The OpenBLAS kernel this CPU really runs best: SkylakeX (AVX-512) where the CPU has
    AVX-512, else Haswell (AVX2 + FMA, which OpenBLAS's Zen targets use too). Debian's
    OpenBLAS 0.3.21 misdetects recent CPUs (Zen 5 as a generic core), so it is forced."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    if "avx512f" in flags:
        return "SkylakeX"
    if "avx2" in flags and "fma" in flags:
        return "Haswell"
    return "Prescott"


def coretypes():
    """OpenBLAS core types to try: the CPU's real kernel (native_coretype), and the
    environment's OPENBLAS_CORETYPE if it names another; the best of them is the peer's figure."""
    import os
    native = native_coretype()
    env = os.environ.get("OPENBLAS_CORETYPE", native)
    return [native] + ([env] if env != native else [])
