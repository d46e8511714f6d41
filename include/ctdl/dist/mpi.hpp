#pragma once
// dist::mpi: the communicator (dist/communicator.hpp) over MPI, for processes on one or
// many machines (Open MPI, MPICH; link MPI::MPI_C from CMake's FindMPI).
//
//   ctdl::dist::mpi comm;                       // MPI_Init_thread when nobody has, MPI_COMM_WORLD's ranks
//   ctdl::dist::data_parallel peers{comm};      // dist/data_parallel.hpp
//
// Every operation is MPI's non-blocking form (MPI_Ibcast, MPI_Iallreduce, MPI_Iallgather,
// MPI_Ibarrier) waited for by polling MPI_Test up to a deadline: the communicator's
// timeout (mpi_options::timeout; by default the CTDL_DIST_TIMEOUT environment variable in
// seconds, else 300 s). Past it, or when MPI reports an error (the communicator returns
// errors, MPI_ERRORS_RETURN, rather than aborting), the call throws a ctdl::error that
// names the rank, what it waited for and for how long, and the communicator is marked
// failed: it is not finalized (MPI_Finalize would wait for the lost rank), so the process
// ends and the launcher (mpirun) stops the rest of the job. A finalize that does not return
// within the timeout ends the process too (std::_Exit(3)), so no path waits forever.
//
// MPI is called from the thread that made the communicator only (MPI_THREAD_FUNNELED):
// the cpu policy's pool threads never call it.
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <type_traits>

#include "../core/error.hpp"
#include "communicator.hpp"

namespace ctdl::dist {

struct mpi_options {
    /// How long any wait may last; zero: CTDL_DIST_TIMEOUT (seconds) when set, else 300 s.
    std::chrono::milliseconds timeout{0};
};

namespace detail {

template <class T>
MPI_Datatype mpi_type() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else static_assert(sizeof(T) == 0, "dist::mpi: values must be float or double");
}

}  // namespace detail

class mpi {
public:
    /// An operation in flight (start_sum); wait() or test() it. Moved, not copied.
    class request {
    public:
        request() = default;
        request(request&& o) noexcept : r_(o.r_), what_(o.what_) { o.r_ = MPI_REQUEST_NULL; }
        request& operator=(request&& o) noexcept {
            r_ = o.r_;
            what_ = o.what_;
            o.r_ = MPI_REQUEST_NULL;
            return *this;
        }
        bool pending() const noexcept { return r_ != MPI_REQUEST_NULL; }

    private:
        friend class mpi;
        MPI_Request r_ = MPI_REQUEST_NULL;
        const char* what_ = "a sum";
    };

    explicit mpi(mpi_options o = {}) : timeout_(o.timeout) {
        timeout_ = detail::timeout_or_default(timeout_);
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (finalized) throw error("dist::mpi: MPI has been finalized in this process already");
        int initialized = 0;
        MPI_Initialized(&initialized);
        if (!initialized) {
            int provided = 0;
            if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
                throw error("dist::mpi: MPI_Init_thread failed");
            owns_init_ = true;
        }
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
        check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }
    mpi(const mpi&) = delete;
    mpi& operator=(const mpi&) = delete;

    ~mpi() {
        if (failed_) return;  // a rank is lost: finalizing would wait for it; the launcher ends the job
        // A peer that is stuck would keep MPI_Finalize from returning: bounded by the timeout.
        std::atomic<bool> done{false};
        std::thread watchdog;
        if (owns_init_) {
            watchdog = std::thread([&done, t = timeout_, r = rank_] {
                const auto deadline = std::chrono::steady_clock::now() + t;
                while (!done.load()) {
                    if (std::chrono::steady_clock::now() > deadline) {
                        std::fprintf(stderr, "ctdl: dist: rank %d: MPI_Finalize did not return within %.1f s; exiting\n",
                                     r, std::chrono::duration<double>(t).count());
                        std::_Exit(3);
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                }
            });
        }
        if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
        if (owns_init_) MPI_Finalize();
        done = true;
        if (watchdog.joinable()) watchdog.join();
    }

    int rank() const noexcept { return rank_; }
    int size() const noexcept { return size_; }
    /// Whether an operation failed or timed out (then nothing more is sent).
    bool failed() const noexcept { return failed_; }
    std::chrono::milliseconds timeout() const noexcept { return timeout_; }
    void set_timeout(std::chrono::milliseconds t) {
        if (t.count() <= 0) throw error("dist::mpi: the timeout must be positive");
        timeout_ = t;
    }
    MPI_Comm native() const noexcept { return comm_; }

    /// root's n values into every rank's data (host memory).
    template <class T>
    void broadcast(T* data, std::size_t n, int root = 0) {
        constexpr std::size_t chunk = std::size_t{1} << 30;
        for (std::size_t at = 0; at < n; at += chunk) {
            request r;
            r.what_ = "a broadcast from rank 0";
            check(MPI_Ibcast(data + at, static_cast<int>(std::min(chunk, n - at)), detail::mpi_type<T>(), root, comm_,
                             &r.r_),
                  "MPI_Ibcast");
            wait(r);
        }
    }

    template <class T>
    void broadcast_host(T* data, std::size_t n, int root = 0) {
        broadcast(data, n, root);
    }

    /// Starts the in-place sum of data[0, n) over the ranks (fewer than 2^31 values).
    template <class T>
    request start_sum(T* data, std::size_t n) {
        if (n > static_cast<std::size_t>(INT_MAX)) throw error("dist::mpi: a sum of more than 2^31 - 1 values");
        request r;
        r.what_ = "a gradient sum";
        check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), detail::mpi_type<T>(), MPI_SUM, comm_, &r.r_),
              "MPI_Iallreduce");
        return r;
    }

    /// Whether r is done (and moves it along: Open MPI progresses inside MPI calls).
    bool test(request& r) {
        if (!r.pending()) return true;
        int flag = 0;
        check(MPI_Test(&r.r_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        return flag != 0;
    }

    /// Waits for r, at most the timeout; then a ctdl::error.
    void wait(request& r) {
        if (!r.pending()) return;
        const auto t0 = std::chrono::steady_clock::now();
        const auto deadline = t0 + timeout_;
        for (unsigned spins = 0;; ++spins) {
            if (test(r)) return;
            const auto now = std::chrono::steady_clock::now();
            if (now > deadline) {
                failed_ = true;
                char waited[32];
                std::snprintf(waited, sizeof waited, "%.1f", std::chrono::duration<double>(now - t0).count());
                throw error("dist: rank " + std::to_string(rank_) + " of " + std::to_string(size_) + " waited " +
                            waited + " s for " + r.what_ +
                            " without an answer: another rank has died or hangs, so this one stops (the limit is "
                            "dist::mpi_options::timeout or CTDL_DIST_TIMEOUT)");
            }
            if (spins < 1000) std::this_thread::yield();
            else std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    }

    /// values[0, n) summed over the ranks, in place (host doubles; blocking, bounded).
    void sum(double* values, std::size_t n) {
        request r;
        r.what_ = "a sum of losses or counts";
        check(MPI_Iallreduce(MPI_IN_PLACE, values, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, comm_, &r.r_),
              "MPI_Iallreduce");
        wait(r);
    }

    /// Every rank's n bytes from mine, in rank order, into all (size() · n bytes).
    void all_gather(const void* mine, std::size_t n, void* all) {
        request r;
        r.what_ = "the other ranks' status";
        check(MPI_Iallgather(mine, static_cast<int>(n), MPI_BYTE, all, static_cast<int>(n), MPI_BYTE, comm_, &r.r_),
              "MPI_Iallgather");
        wait(r);
    }

    void barrier() {
        request r;
        r.what_ = "a barrier";
        check(MPI_Ibarrier(comm_, &r.r_), "MPI_Ibarrier");
        wait(r);
    }

private:
    void check(int rc, const char* call) {
        if (rc == MPI_SUCCESS) return;
        failed_ = true;
        char text[MPI_MAX_ERROR_STRING];
        int length = 0;
        if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = std::snprintf(text, sizeof text, "error %d", rc);
        throw error("dist: rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " + call +
                    " failed: " + std::string(text, static_cast<std::size_t>(std::max(length, 0))) +
                    " (another rank has died?)");
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1;
    bool owns_init_ = false, failed_ = false;
    std::chrono::milliseconds timeout_;
};

static_assert(communicator<mpi>);
static_assert(communicator<single>);

}  // namespace ctdl::dist
