#pragma once
// A fixed-size thread pool with static work partitioning.
//
// run(f) calls f(t, n) once for each t in [0, n): t = 0 on the calling thread, t ≥ 1 on
// worker t — unless worker t has not yet taken its part when the caller has finished its
// own: then the caller runs f(t, n) itself (the slot is claimed by exactly one of them). A
// descheduled worker (the machine is shared) thus never holds up a job it has not started.
// Kernels split their work by t alone, never by timing or by which thread runs a part, so
// for a given thread count every result is bitwise reproducible. Parts of one job must not
// wait for each other. Workers spin for up to 200 us between jobs (kernels come in quick
// succession during a training step) and then sleep on an atomic wait.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"

namespace ctdl {

class thread_pool {
public:
    explicit thread_pool(std::size_t threads = default_threads()) { start(threads); }
    ~thread_pool() { stop(); }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    /// CTDL_THREADS from the environment when set (1 to 1024), else one thread per hardware
    /// thread. A bad value is a ctdl::error that names it.
    static std::size_t default_threads() {
        if (const char* env = std::getenv("CTDL_THREADS"); env != nullptr && *env != '\0') {
            std::size_t n = 0;
            const char* end = env + std::strlen(env);
            const auto [ptr, ec] = std::from_chars(env, end, n);
            if (ec != std::errc{} || ptr != end || n < 1 || n > 1024)
                throw error("CTDL_THREADS: expected a thread count from 1 to 1024, got '" +
                            std::string(env, std::min<std::size_t>(std::strlen(env), 40)) + "'");
            return n;
        }
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
        const job j{&call<std::remove_reference_t<F>>,
                    const_cast<void*>(static_cast<const volatile void*>(std::addressof(f)))};
        if (workers_.empty() || in_job_) {
            j.fn(j.f, 0, 1);
            return;
        }
        run_job(j);
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
    // A job: fn(f, t, n) calls the caller's f(t, n). (A plain pointer pair rather than a
    // std::function, and the posting and waiting below compiled once, not once per kernel:
    // each run<F> then costs a few instructions, with no type-erased manager or RTTI.)
    struct job {
        void (*fn)(void*, std::size_t, std::size_t) = nullptr;
        void* f = nullptr;
    };

    /// The job's f(t, n), f of type G: the one copy of f's body (the serial case calls it too).
    template <class G>
    [[gnu::noinline]] static void call(void* f, std::size_t t, std::size_t n) {
        (*static_cast<G*>(f))(t, n);
    }

    /// run()'s parallel case: posts j, runs part 0 and the unclaimed parts, waits for the rest.
    /// Out of line: one copy serves every kernel (a job costs microseconds; the call nothing).
    [[gnu::noinline]] void run_job(job j) {
        std::lock_guard<std::mutex> one_job_at_a_time(submit_);
        job_ = j;
        error_ = nullptr;
        remaining_.store(workers_.size(), std::memory_order_relaxed);
        const std::uint64_t e = epoch_.fetch_add(1, std::memory_order_release) + 1;
        epoch_.notify_all();
        execute(0);
        // The parts no worker has claimed yet: run them here.
        for (std::size_t t = 1; t < size(); ++t)
            if (claim(t, e)) finish(t);
        // Wait for the workers still running their parts: spin, then sleep.
        spin_then_wait(remaining_, [](std::size_t r) { return r != 0; });
        job_ = {};
        if (error_) std::rethrow_exception(error_);
    }

    /// How long a thread spins for the next job (a worker) or for the other parts (the
    /// caller) before it sleeps. Kernels of a step, and batch-1 inference calls, come within
    /// microseconds of each other; a worker that has gone to sleep wakes tens of microseconds
    /// late and the caller then runs its part itself. Measured, 64×784×256 GEMM on 2 threads
    /// in a loop: spinning 2^14 loads (a few microseconds) gave a median of 67 us and a p90 of
    /// 97 us (the slow calls nearly serial); 200 us of spinning, 58 us and 59 us.
    static constexpr std::chrono::microseconds spin_time{200};

    /// Returns once busy(a) is false: spins on loads for up to spin_time, then sleeps on
    /// a.wait (woken by the notify that follows every change).
    template <class Atomic, class Busy>
    static void spin_then_wait(Atomic& a, Busy busy) {
        const auto start = std::chrono::steady_clock::now();
        for (unsigned spin = 1;; ++spin) {
            const auto v = a.load(std::memory_order_acquire);
            if (!busy(v)) return;
            if (spin % 256 == 0 && std::chrono::steady_clock::now() - start > spin_time)
                a.wait(v, std::memory_order_acquire);
        }
    }

    /// Slot t of job e: true for the one thread (worker t or the caller) that takes it.
    bool claim(std::size_t t, std::uint64_t e) {
        std::uint64_t expected = e - 1;
        return claimed_[t].value.compare_exchange_strong(expected, e, std::memory_order_acq_rel,
                                                         std::memory_order_relaxed);
    }

    /// Runs slot t and counts it done.
    void finish(std::size_t t) {
        execute(t);
        if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
    }

    void execute(std::size_t t) {
        in_job_ = true;
        try {
            job_.fn(job_.f, t, size());
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
            spin_then_wait(epoch_, [seen](std::uint64_t e) { return e == seen; });
            seen = epoch_.load(std::memory_order_acquire);
            if (quit_.load(std::memory_order_acquire)) return;
            // Job `seen` is still running unless the caller took this part: then the job may
            // be over and job_ gone, so nothing of it is touched.
            if (claim(t, seen)) finish(t);
        }
    }

    void start(std::size_t threads) {
        if (threads == 0) throw error("thread_pool: the thread count must be at least 1");
        quit_.store(false);
        workers_.reserve(threads - 1);
        const std::uint64_t epoch = epoch_.load();
        claimed_ = std::vector<slot>(threads);
        for (auto& c : claimed_) c.value.store(epoch, std::memory_order_relaxed);
        for (std::size_t t = 1; t < threads; ++t) workers_.emplace_back([this, t, epoch] { worker(t, epoch); });
    }

    void stop() {
        quit_.store(true, std::memory_order_release);
        epoch_.fetch_add(1, std::memory_order_release);
        epoch_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
    }

    // claimed_[t]: the last job (epoch) whose slot t was taken. Every slot of a job is taken
    // before run() returns, so at the start of job e each holds e - 1. Own cache lines.
    struct alignas(64) slot {
        std::atomic<std::uint64_t> value{0};
    };

    std::vector<std::thread> workers_;
    std::vector<slot> claimed_;
    std::mutex submit_;
    job job_;
    std::atomic<std::uint64_t> epoch_{0};
    std::atomic<std::size_t> remaining_{0};
    std::atomic<bool> quit_{false};
    std::mutex error_lock_;
    std::exception_ptr error_;
    static inline thread_local bool in_job_ = false;
};

}  // namespace ctdl
