#pragma once
// A fixed-size thread pool with static work partitioning.
//
// run(f) calls f(t, n) once on each of n threads (t = 0 is the calling thread). Kernels
// split their work by t alone, never by timing, so for a given thread count every result
// is bitwise reproducible. Workers spin briefly between jobs (kernels come in quick
// succession during a training step) and then sleep on an atomic wait.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "../core/error.hpp"

namespace ctdl {

class thread_pool {
public:
    explicit thread_pool(std::size_t threads = default_threads()) { start(threads); }
    ~thread_pool() { stop(); }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    static std::size_t default_threads() {
        const unsigned h = std::thread::hardware_concurrency();
        return h == 0 ? 1 : h;
    }

    std::size_t size() const noexcept { return workers_.size() + 1; }

    /// Stops the workers and starts `threads` new ones (threads >= 1). Not to be called
    /// while a job runs.
    void resize(std::size_t threads) {
        if (threads == 0) throw error("thread_pool: the thread count must be at least 1");
        if (threads == size()) return;
        stop();
        start(threads);
    }

    /// Calls f(t, n) for t in [0, n) on n = size() threads and returns when all are done.
    /// A call from inside a job runs f(0, 1) on the calling thread (no nested parallelism).
    /// The first exception thrown by any f is rethrown here.
    template <class F>
    void run(F&& f) {
        if (workers_.empty() || in_job_) {
            f(std::size_t{0}, std::size_t{1});
            return;
        }
        std::lock_guard<std::mutex> one_job_at_a_time(submit_);
        job_ = [&f](std::size_t t, std::size_t n) { f(t, n); };
        error_ = nullptr;
        remaining_.store(workers_.size(), std::memory_order_relaxed);
        epoch_.fetch_add(1, std::memory_order_release);
        epoch_.notify_all();
        execute(0);
        // Wait for the workers: spin, then sleep.
        for (int spin = 0; remaining_.load(std::memory_order_acquire) != 0; ++spin) {
            if (spin > spin_limit) {
                std::size_t r = remaining_.load(std::memory_order_acquire);
                if (r != 0) remaining_.wait(r, std::memory_order_acquire);
            }
        }
        job_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

    /// run() split over [0, count): thread t gets one contiguous block, f(begin, end).
    template <class F>
    void parallel_for(std::size_t count, F&& f) {
        if (count == 0) return;
        run([&](std::size_t t, std::size_t n) {
            const auto [b, e] = split(count, t, n);
            if (b < e) f(b, e);
        });
    }

    /// The block of [0, count) that thread t of n owns in a static partition.
    static constexpr std::pair<std::size_t, std::size_t> split(std::size_t count, std::size_t t,
                                                               std::size_t n) {
        const std::size_t base = count / n, extra = count % n;
        const std::size_t b = t * base + std::min(t, extra);
        return {b, b + base + (t < extra ? 1 : 0)};
    }

private:
    static constexpr int spin_limit = 1 << 14;

    void execute(std::size_t t) {
        in_job_ = true;
        try {
            job_(t, size());
        } catch (...) {
            std::lock_guard<std::mutex> g(error_lock_);
            if (!error_) error_ = std::current_exception();
        }
        in_job_ = false;
    }

    // `seen` is the epoch when the pool started, so a job posted before this thread first
    // runs is not missed.
    void worker(std::size_t t, std::uint64_t seen) {
        for (;;) {
            std::uint64_t now;
            for (int spin = 0; (now = epoch_.load(std::memory_order_acquire)) == seen; ++spin)
                if (spin > spin_limit) epoch_.wait(seen, std::memory_order_acquire);
            seen = now;
            if (quit_.load(std::memory_order_acquire)) return;
            execute(t);
            if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
        }
    }

    void start(std::size_t threads) {
        if (threads == 0) throw error("thread_pool: the thread count must be at least 1");
        quit_.store(false);
        workers_.reserve(threads - 1);
        const std::uint64_t epoch = epoch_.load();
        for (std::size_t t = 1; t < threads; ++t) workers_.emplace_back([this, t, epoch] { worker(t, epoch); });
    }

    void stop() {
        quit_.store(true, std::memory_order_release);
        epoch_.fetch_add(1, std::memory_order_release);
        epoch_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
    }

    std::vector<std::thread> workers_;
    std::mutex submit_;
    std::function<void(std::size_t, std::size_t)> job_;
    std::atomic<std::uint64_t> epoch_{0};
    std::atomic<std::size_t> remaining_{0};
    std::atomic<bool> quit_{false};
    std::mutex error_lock_;
    std::exception_ptr error_;
    static inline thread_local bool in_job_ = false;
};

}  // namespace ctdl
