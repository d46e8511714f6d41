"""Timing shared by the PyTorch peers: the median time of one call of step(), in microseconds."""
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
