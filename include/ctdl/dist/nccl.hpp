#pragma once
// dist::nccl: the communicator (dist/communicator.hpp) over NCCL, for models on the
// device policy under CUDA (nvcc; link NCCL, -lnccl). One GPU per rank.
//
//   ctdl::dist::mpi host;                              // or dist::single for one GPU
//   ctdl::dist::nccl<ctdl::dist::mpi> comm{host};      // ncclCommInitRank over host's ranks
//   ctdl::dist::data_parallel peers{comm};
//
// A host communicator carries what is not device data: the NCCL unique id (broadcast from
// rank 0), host sums (losses, counts), the ranks' status (all_gather) and barriers. Device
// data (parameters, gradient buckets) goes through NCCL on a stream of the communicator's
// own: a sum first makes that stream wait for the work queued so far on the default stream
// (where Thrust's kernels and the cuBLASLt GEMMs run), so a bucket is sent once the
// backward kernels that wrote it are done, while later kernels go on. Waits poll a CUDA
// event and ncclCommGetAsyncError up to the timeout (nccl_options::timeout; by default
// CTDL_DIST_TIMEOUT seconds, else 300 s); past it, or on an NCCL error, the communicator
// is aborted (ncclCommAbort) and the call throws a ctdl::error saying who waited for what.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "communicator.hpp"

namespace ctdl::dist {

struct nccl_options {
    /// How long any wait may last; zero: CTDL_DIST_TIMEOUT (seconds) when set, else 300 s.
    std::chrono::milliseconds timeout{0};
    /// The CUDA device of this rank; -1: the host rank modulo the number of devices.
    int device = -1;
};

namespace detail {

template <class T>
ncclDataType_t nccl_type() {
    if constexpr (std::is_same_v<T, float>) return ncclFloat32;
    else if constexpr (std::is_same_v<T, double>) return ncclFloat64;
    else static_assert(sizeof(T) == 0, "dist::nccl: values must be float or double");
}

}  // namespace detail

template <class Host = single>
class nccl {
    static_assert(communicator<Host>, "dist::nccl<Host>: Host must be a dist::communicator (dist::mpi, dist::single)");

public:
    /// An operation in flight: the event recorded after it on the communicator's stream.
    class request {
    public:
        request() = default;
        request(request&& o) noexcept : done_(o.done_), what_(o.what_) { o.done_ = nullptr; }
        request& operator=(request&& o) noexcept {
            std::swap(done_, o.done_);
            what_ = o.what_;
            return *this;
        }
        ~request() {
            if (done_) cudaEventDestroy(done_);
        }
        bool pending() const noexcept { return done_ != nullptr; }

    private:
        friend class nccl;
        cudaEvent_t done_ = nullptr;
        const char* what_ = "a sum";
    };

    explicit nccl(Host& host, nccl_options o = {}) : host_(&host), timeout_(detail::timeout_or_default(o.timeout)) {
        int devices = 0;
        cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
        if (devices == 0) throw error("dist::nccl: no CUDA device");
        device_ = o.device >= 0 ? o.device : host.rank() % devices;
        cuda(cudaSetDevice(device_), "cudaSetDevice");
        ncclUniqueId id{};
        if (host.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
        // The id's bytes, through the host communicator (as doubles would round them: bytes).
        std::vector<char> all(sizeof id * static_cast<std::size_t>(host.size()));
        host.all_gather(&id, sizeof id, all.data());
        std::memcpy(&id, all.data(), sizeof id);  // rank 0's
        cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        check(ncclCommInitRank(&comm_, host.size(), id, host.rank()), "ncclCommInitRank");
    }
    nccl(const nccl&) = delete;
    nccl& operator=(const nccl&) = delete;
    ~nccl() {
        if (comm_) {
            if (failed_) ncclCommAbort(comm_);
            else ncclCommDestroy(comm_);
        }
        if (stream_) cudaStreamDestroy(stream_);
    }

    int rank() const noexcept { return host_->rank(); }
    int size() const noexcept { return host_->size(); }
    int device() const noexcept { return device_; }
    bool failed() const noexcept { return failed_; }
    void set_timeout(std::chrono::milliseconds t) {
        if (t.count() <= 0) throw error("dist::nccl: the timeout must be positive");
        timeout_ = t;
    }

    /// root's n values into every rank's data (device memory).
    template <class T>
    void broadcast(T* data, std::size_t n, int root = 0) {
        after_default_stream();
        check(ncclBroadcast(data, data, n, detail::nccl_type<T>(), root, comm_, stream_), "ncclBroadcast");
        request r = recorded("a broadcast from rank 0");
        wait(r);
    }

    /// Starts the in-place sum of data[0, n) (device memory) after the work queued so far.
    template <class T>
    request start_sum(T* data, std::size_t n) {
        after_default_stream();
        check(ncclAllReduce(data, data, n, detail::nccl_type<T>(), ncclSum, comm_, stream_), "ncclAllReduce");
        return recorded("a gradient sum");
    }

    bool test(request& r) {
        if (!r.pending()) return true;
        const cudaError_t s = cudaEventQuery(r.done_);
        if (s == cudaSuccess) {
            cudaEventDestroy(r.done_);
            r.done_ = nullptr;
            return true;
        }
        if (s != cudaErrorNotReady) cuda(s, "cudaEventQuery");
        ncclResult_t async = ncclSuccess;
        check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
        check(async, "an NCCL operation");
        return false;
    }

    void wait(request& r) {
        const auto t0 = std::chrono::steady_clock::now();
        while (!test(r)) {
            const auto now = std::chrono::steady_clock::now();
            if (now - t0 > timeout_) {
                failed_ = true;
                char waited[32];
                std::snprintf(waited, sizeof waited, "%.1f", std::chrono::duration<double>(now - t0).count());
                throw error("dist: rank " + std::to_string(rank()) + " of " + std::to_string(size()) + " waited " +
                            waited + " s for " + r.what_ +
                            " (NCCL) without an answer: another rank has died or hangs, so this one stops");
            }
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    }

    template <class T>
    void broadcast_host(T* data, std::size_t n, int root = 0) {
        host_->broadcast_host(data, n, root);
    }
    void sum(double* values, std::size_t n) { host_->sum(values, n); }
    void all_gather(const void* mine, std::size_t n, void* all) { host_->all_gather(mine, n, all); }
    void barrier() { host_->barrier(); }

private:
    void after_default_stream() {
        cudaEvent_t queued = nullptr;
        cuda(cudaEventCreateWithFlags(&queued, cudaEventDisableTiming), "cudaEventCreateWithFlags");
        cuda(cudaEventRecord(queued, cudaStream_t{}), "cudaEventRecord");
        cuda(cudaStreamWaitEvent(stream_, queued, 0), "cudaStreamWaitEvent");
        cudaEventDestroy(queued);  // released once the wait is done
    }
    request recorded(const char* what) {
        request r;
        r.what_ = what;
        cuda(cudaEventCreateWithFlags(&r.done_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
        cuda(cudaEventRecord(r.done_, stream_), "cudaEventRecord");
        return r;
    }
    void check(ncclResult_t rc, const char* call) {
        if (rc == ncclSuccess) return;
        failed_ = true;
        throw error("dist: rank " + std::to_string(rank()) + " of " + std::to_string(size()) + ": " + call +
                    " failed: " + ncclGetErrorString(rc));
    }
    void cuda(cudaError_t rc, const char* call) {
        if (rc == cudaSuccess) return;
        failed_ = true;
        throw error("dist::nccl: " + std::string(call) + " failed: " + cudaGetErrorString(rc));
    }

    Host* host_;
    std::chrono::milliseconds timeout_;
    int device_ = 0;
    cudaStream_t stream_ = nullptr;
    ncclComm_t comm_ = nullptr;
    bool failed_ = false;
};

static_assert(communicator<nccl<single>>);

}  // namespace ctdl::dist
