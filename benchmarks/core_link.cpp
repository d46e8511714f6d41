// How far apart the machine's first two CPUs are: the round trip of one cache line between
// two threads pinned to CPUs 0 and 1, median of 9 runs of 20 000 round trips.
//
// The 2-thread figures of a shared virtual machine depend on it. Measured on this project's
// 2-CPU machine: where the host has placed the two virtual CPUs near each other a round trip
// takes ~80 ns and a 2-thread MLP training step ~195 us; apart, 200-600 ns and ~305 us
// (the same binary; the placement changes from minute to minute, at times within a run).
// The run_*.sh scripts print it before and after so a 2-thread ratio is read with its
// placement.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

bool pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

}  // namespace

int main() {
    if (std::thread::hardware_concurrency() < 2) {
        std::puts("core link: one CPU only");
        return 0;
    }
    constexpr int trips = 20000, runs = 9;
    alignas(64) static std::atomic<int> line{0};
    std::vector<double> ns;
    bool pinned = pin(0);
    for (int r = 0; r < runs; ++r) {
        line.store(0);
        std::thread other([&] {
            pinned = pin(1) && pinned;
            for (int i = 0; i < trips; ++i) {
                while (line.load(std::memory_order_acquire) != 2 * i + 1) {
                }
                line.store(2 * i + 2, std::memory_order_release);
            }
        });
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < trips; ++i) {
            line.store(2 * i + 1, std::memory_order_release);
            while (line.load(std::memory_order_acquire) != 2 * i + 2) {
            }
        }
        ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / trips);
        other.join();
    }
    std::sort(ns.begin(), ns.end());
    std::printf("core link: CPU 0 <-> CPU 1 cache-line round trip %.0f ns%s\n", ns[runs / 2],
                pinned ? "" : " (could not pin the threads)");
    return 0;
}
