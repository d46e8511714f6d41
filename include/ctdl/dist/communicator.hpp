#pragma once
// ctdl::dist: data-parallel training over a proven transport (MPI for processes,
// NCCL for GPUs), not one of ctdl's own.
//
// A communicator (the concept below) is a fixed group of processes, `size()` of them, this
// one being `rank()`. It offers what data-parallel training needs and nothing more:
//
//   broadcast(data, n, root)     the root's n values into everyone's (in place)
//   broadcast_host(data, n, root) the same for host memory (what is not the model's data)
//   start_sum(data, n) -> request, test(request), wait(request)
//                                an in-place sum over the ranks, started now and waited for
//                                later, so that it runs while the backward pass goes on
//   sum(values, n)               host doubles summed over the ranks (losses, counts)
//   all_gather(mine, n, all)     every rank's n bytes, in rank order, on every rank
//   barrier()
//
// `data` is the memory of the model's policy (host memory for MPI; device memory for NCCL).
// Every operation that waits is bounded by the communicator's timeout: a rank that died or
// hangs makes the others throw a ctdl::error that says who waited for what, instead of
// hanging (dist/mpi.hpp). Ranks must call the collective operations in the same order.
//
// dist::single is the one-rank communicator (no transport: every operation is local);
// dist::mpi (dist/mpi.hpp, needs <mpi.h>) and dist::nccl (dist/nccl.hpp, needs nvcc and
// NCCL) are the real ones. dist::collectively and dist::agree (below) make a failure on
// one rank a clear error on all of them.
#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../io/text.hpp"

namespace ctdl::dist {

namespace detail {

/// t when positive, else the CTDL_DIST_TIMEOUT environment variable (seconds, a decimal
/// number > 0), else 300 s: how long a communicator waits before it gives up on a peer.
inline std::chrono::milliseconds timeout_or_default(std::chrono::milliseconds t) {
    if (t.count() > 0) return t;
    const char* v = std::getenv("CTDL_DIST_TIMEOUT");
    if (!v) return std::chrono::seconds(300);
    const auto seconds = parse_number<double>(v);
    if (!seconds || !(*seconds > 0) || *seconds > 1e7)
        throw error("dist: CTDL_DIST_TIMEOUT must be a number of seconds > 0, got '" + std::string(v) + "'");
    return std::chrono::milliseconds(static_cast<long long>(*seconds * 1000 + 0.5));
}

}  // namespace detail

template <class C>
concept communicator = requires(C& c, const C& cc, float* f, double* d, std::size_t n, typename C::request& r,
                                const void* src, void* dst) {
    { cc.rank() } -> std::convertible_to<int>;
    { cc.size() } -> std::convertible_to<int>;
    c.broadcast(f, n, 0);
    c.broadcast_host(d, n, 0);
    { c.start_sum(f, n) } -> std::same_as<typename C::request>;
    { c.test(r) } -> std::convertible_to<bool>;
    c.wait(r);
    c.sum(d, n);
    c.all_gather(src, n, dst);
    c.barrier();
};

/// One rank and no transport: every operation is local (a sum over one rank is the values).
class single {
public:
    struct request {};
    int rank() const noexcept { return 0; }
    int size() const noexcept { return 1; }
    template <class T>
    void broadcast(T*, std::size_t, int = 0) {}
    template <class T>
    void broadcast_host(T*, std::size_t, int = 0) {}
    template <class T>
    request start_sum(T*, std::size_t) {
        return {};
    }
    bool test(request&) { return true; }
    void wait(request&) {}
    void sum(double*, std::size_t) {}
    void all_gather(const void* mine, std::size_t n, void* all) { std::memcpy(all, mine, n); }
    void barrier() {}
};

/// Whether this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI):
/// the variables Open MPI, MPICH and Slurm's PMI set for every process they start.
inline bool launched_by_mpirun() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
        if (std::getenv(v)) return true;
    return false;
}

/// Every rank says whether it failed (a non-empty message) at the same point; if any did,
/// every rank throws one ctdl::error naming `what`, each failed rank and its message (the
/// first 400 bytes of each). Nothing is thrown when all succeeded.
template <class Comm>
void agree(Comm& comm, std::string_view what, const std::string& failure) {
    constexpr std::size_t width = 400;
    std::vector<char> mine(width, '\0'), all(width * static_cast<std::size_t>(comm.size()), '\0');
    if (!failure.empty()) {
        std::memcpy(mine.data(), failure.data(), std::min(failure.size(), width - 1));
        if (mine[0] == '\0') mine[0] = '?';  // a failure is never empty
    }
    comm.all_gather(mine.data(), width, all.data());
    std::string message;
    for (int r = 0; r < comm.size(); ++r) {
        const char* m = all.data() + static_cast<std::size_t>(r) * width;
        if (m[0] == '\0') continue;
        std::string_view text(m, strnlen(m, width));
        if (text.starts_with("ctdl: ")) text.remove_prefix(6);
        message += (message.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + ": " + std::string(text);
    }
    if (!message.empty())
        throw error("dist: " + std::string(what) + " failed, " +
                    (comm.size() == 1 ? std::string("so the run stops")
                                      : "and all " + std::to_string(comm.size()) + " ranks stop") +
                    ": " + message);
}

/// f() on every rank; if it throws on any rank, every rank throws the same ctdl::error
/// (agree). f must not itself use the communicator.
template <class Comm, class F>
void collectively(Comm& comm, std::string_view what, F&& f) {
    std::string failure;
    try {
        f();
    } catch (const std::exception& e) {
        failure = e.what();
    }
    agree(comm, what, failure);
}

}  // namespace ctdl::dist
