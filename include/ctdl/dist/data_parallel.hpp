#pragma once
// dist::data_parallel: data-parallel training on a communicator (dist/communicator.hpp),
// in the manner of PyTorch's DistributedDataParallel.
//
//   ctdl::dist::mpi comm;
//   ctdl::dist::data_parallel peers{comm};
//   auto report = ctdl::train::run<B, T>(net, opt, data, data_rng, options, peers);
//
// - At the start every rank takes rank 0's parameters, optimizer state, step count,
//   learning rate and data position (share_state), so a run started with the same seed
//   everywhere, or resumed from a checkpoint on rank 0 (written by a run on any number of
//   ranks), continues from one state.
// - Data (train/loop.hpp): in each micro-batch every rank draws size() batches of B rows in
//   turn from the shared data position, with the batch source's own sample_batch, and trains
//   on the rank()-th: the ranks read disjoint draws, and since a text_dataset draws its rows
//   in order, P ranks with B rows read what one with P · B reads, whatever P is.
// - Gradients: the model's flat gradient buffer is cut into buckets of about
//   `bucket_bytes`, from its end. The backward pass tells (graph::gradient_hook) when the
//   gradients from an offset to the end are final; each bucket that lies wholly there is
//   started at once as an in-place sum (MPI_Iallreduce), and the pass goes on while it
//   runs; the hook also polls the buckets in flight, which is what moves them along.
//   reduce_gradients() waits for the rest. The loop then steps with 1/(ranks ·
//   accumulation) of the sum folded into the optimizer's scale (and into the gradient
//   norm), so the mean costs no pass. Frozen parameters have no gradients, so nothing of
//   them is sent. With gradient accumulation only the last micro-batch's pass reduces.
// - Every rank steps with the same sum (the transport's reduction gives every rank the
//   same bits), so the weights stay equal on all ranks (tests/dist/).
// - The loss and the validation loss are means over the ranks; each rank evaluates its
//   share of the validation batches. Only rank 0 writes the progress, log, plot and
//   checkpoints; the others wait for it (collectively: if its write fails, all stop).
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../graph/node_io.hpp"
#include "../train/peers.hpp"
#include "communicator.hpp"

namespace ctdl::dist {

struct data_parallel_options {
    /// Bytes of gradient per bucket (the last bucket of the buffer's start may be smaller).
    std::size_t bucket_bytes = std::size_t{1} << 20;
    /// Start buckets while the backward pass runs (false: all of them after it, to measure
    /// what the overlap hides).
    bool overlap = true;
};

/// What the last step's gradient reduction cost (for measurements).
struct reduction_stats {
    std::size_t buckets = 0;
    std::size_t bytes = 0;            ///< bytes of gradient summed (each rank's share in and out)
    std::size_t started_during_backward = 0;
    double backward_seconds = 0;      ///< the last backward pass, with the starts and polls inside it
    double wait_seconds = 0;          ///< reduce_gradients(): what the overlap did not hide
};

template <class Comm>
class data_parallel {
    static_assert(communicator<Comm>, "dist::data_parallel: Comm must be a dist::communicator");

public:
    explicit data_parallel(Comm& comm, data_parallel_options o = {}) : comm_(&comm), o_(o) {
        if (o_.bucket_bytes == 0) throw error("dist::data_parallel: bucket_bytes must be at least 1");
    }
    data_parallel(const data_parallel&) = delete;
    data_parallel& operator=(const data_parallel&) = delete;

    Comm& comm() noexcept { return *comm_; }
    int rank() const noexcept { return comm_->rank(); }
    int size() const noexcept { return comm_->size(); }
    bool root() const noexcept { return comm_->rank() == 0; }
    const reduction_stats& last_reduction() const noexcept { return stats_; }
    const data_parallel_options& options() const noexcept { return o_; }

    /// f() on every rank; a failure on any rank is a ctdl::error on all (dist::collectively).
    template <class F>
    void collectively(std::string_view what, F&& f) {
        dist::collectively(*comm_, what, std::forward<F>(f));
    }

    /// Every rank takes rank 0's parameters.
    template <class Model>
    void broadcast_parameters(Model& net) {
        comm_->broadcast(net.parameters(), Model::parameter_count, 0);
    }

    /// Every rank takes rank 0's parameters, optimizer state (buffers, step count, learning
    /// rate) and data position.
    template <class Model, class Optimizer>
    void share_state(Model& net, Optimizer& opt, rng& data_rng) {
        using T = typename Model::value_type;
        broadcast_parameters(net);
        for (const auto& s : opt.state_tensors()) comm_->broadcast(s.values.data(), s.values.size(), 0);
        // The step count, lr and data position, as doubles holding exact 32-bit halves.
        const rng_state rs = data_rng.state();
        const std::uint64_t words[] = {opt.step_count(), rs.seed, rs.stream, rs.counter};
        double packed[2 * std::size(words) + 1];
        for (std::size_t i = 0; i < std::size(words); ++i) {
            packed[2 * i] = static_cast<double>(words[i] >> 32);
            packed[2 * i + 1] = static_cast<double>(words[i] & 0xffffffffu);
        }
        packed[2 * std::size(words)] = static_cast<double>(opt.lr());
        comm_->broadcast_host(packed, std::size(packed), 0);
        if (root()) return;
        std::uint64_t got[std::size(words)];
        for (std::size_t i = 0; i < std::size(words); ++i)
            got[i] = (static_cast<std::uint64_t>(packed[2 * i]) << 32) | static_cast<std::uint64_t>(packed[2 * i + 1]);
        opt.set_step_count(got[0]);
        opt.set_lr(static_cast<T>(packed[2 * std::size(words)]));
        data_rng.set_state(rng_state{got[1], got[2], got[3]});
    }

    /// The backward pass; when `last` (the last micro-batch of a step), the gradient
    /// buckets are started as they become final (or all at the end without overlap).
    template <class Model, class Acts, class X, class DY>
    void backward(Model& net, Acts& acts, const X& x, DY&& dy, bool accumulate, bool last) {
        const bool step = train::only_backward_of_step(acts, dy, accumulate, last);
        if (!last || one_rank_without_transport) {
            train::micro_batch_backward(net, acts, x, dy, step, accumulate);
            return;
        }
        plan(net.gradient_target(acts, step), Model::gradient_count);
        const auto t0 = std::chrono::steady_clock::now();
        graph::gradient_hook hook{this, &data_parallel::on_final};
        train::micro_batch_backward(net, acts, x, dy, step, accumulate, o_.overlap ? &hook : nullptr);
        if (!o_.overlap) on_final(this, 0);
        stats_.backward_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

    /// Waits until every bucket is summed: the gradients are then the sum over the ranks.
    void reduce_gradients() {
        if (one_rank_without_transport) return;
        const auto t0 = std::chrono::steady_clock::now();
        on_final(this, 0);  // every bucket started
        for (auto& r : requests_) comm_->wait(r);
        requests_.clear();
        stats_.wait_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

    /// v summed over the ranks.
    double sum(double v) {
        comm_->sum(&v, 1);
        return v;
    }

    /// The buckets as [begin, end) offsets of the gradient buffer, last bucket first (the
    /// order they are started in), for n gradients.
    static std::vector<std::pair<std::size_t, std::size_t>> buckets(std::size_t n, std::size_t per_bucket) {
        std::vector<std::pair<std::size_t, std::size_t>> b;
        for (std::size_t end = n; end > 0;) {
            const std::size_t begin = end > per_bucket ? end - per_bucket : 0;
            b.push_back({begin, end});
            end = begin;
        }
        return b;
    }

private:
    // dist::single has nothing to send; a real transport with one rank still runs every
    // bucket (one GPU exercises NCCL end to end).
    static constexpr bool one_rank_without_transport = std::is_same_v<Comm, single>;

    template <class T>
    void plan(T* grads, std::size_t n) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
        if (!requests_.empty()) throw error("dist::data_parallel: a backward pass began before the last reduction ended");
        if (n != planned_n_ || static_cast<void*>(grads) != grads_) {
            buckets_ = buckets(n, std::max<std::size_t>(1, o_.bucket_bytes / sizeof(T)));
            planned_n_ = n;
            grads_ = grads;
            start_ = [](data_parallel& self, std::size_t k) {
                const auto [b, e] = self.buckets_[k];
                return self.comm_->start_sum(static_cast<T*>(self.grads_) + b, e - b);
            };
        }
        next_ = 0;
        stats_ = {};
        stats_.buckets = buckets_.size();
        stats_.bytes = n * sizeof(T);
        requests_.clear();
        requests_.reserve(buckets_.size());
    }

    /// The hook: gradients [offset, n) are final. Starts every bucket wholly inside, and
    /// polls the ones in flight.
    static void on_final(void* context, std::size_t offset) {
        auto& self = *static_cast<data_parallel*>(context);
        const bool during = offset > 0;
        while (self.next_ < self.buckets_.size() && self.buckets_[self.next_].first >= offset) {
            self.requests_.push_back(self.start_(self, self.next_));
            ++self.next_;
            if (during) ++self.stats_.started_during_backward;
        }
        for (auto& r : self.requests_) self.comm_->test(r);
    }

    Comm* comm_;
    data_parallel_options o_;
    std::vector<std::pair<std::size_t, std::size_t>> buckets_;
    std::vector<typename Comm::request> requests_;
    typename Comm::request (*start_)(data_parallel&, std::size_t) = nullptr;
    void* grads_ = nullptr;
    std::size_t planned_n_ = 0, next_ = 0;
    reduction_stats stats_;
};

}  // namespace ctdl::dist
