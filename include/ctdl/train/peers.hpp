#pragma once
// The processes that share one training run, as train::run sees them.
//
// train::run(net, opt, ds, rng, o) trains in one process: train::one_process, below.
// train::run(net, opt, ds, rng, o, peers) trains data-parallel: peers is a
// dist::data_parallel (dist/data_parallel.hpp), which offers the same members over a
// communicator. What the loop asks of them:
//
//   rank(), size(), root()        this process's place; only the root writes files
//   collectively(what, f)         f() on every process; if it throws on any, on all of them
//                                 a ctdl::error naming the ranks and their messages
//   share_state(net, opt, rng)    every process takes the root's parameters, optimizer state
//                                 and data position (a start, or a resume on any count)
// (The data: in each micro-batch every process draws size() batches in turn from the shared
// position and trains on the rank()-th; train/loop.hpp.)
//   backward(net, acts, x, dy, accumulate, last)  the backward pass (reducing gradients
//                                 while it runs, on the last micro-batch of a step); dy is
//                                 acts.dout, and a step's only micro-batch (!accumulate &&
//                                 last) is a model::backward_step (gradients in acts.dout
//                                 where the model allows)
//   reduce_gradients()            after it, the gradients are the sum over the processes
//   sum(v)                        v summed over the processes (losses, counts)
#include <cstddef>
#include <type_traits>

#include "../core/random.hpp"
#include "../graph/node_io.hpp"

namespace ctdl::train {

/// Whether a backward pass is the only one of its step, from the loss in acts.dout: then
/// it is a model::backward_step.
template <class Acts, class DY>
bool only_backward_of_step(const Acts& acts, const DY& dy, bool accumulate, bool last) {
    return !accumulate && last && static_cast<const void*>(dy.data()) == static_cast<const void*>(acts.dout.data());
}

/// A micro-batch's backward pass: model::backward_step when it is the only one of its step
/// (only_backward_of_step), else model::backward.
template <class Model, class Acts, class X, class DY>
void micro_batch_backward(Model& net, Acts& acts, const X& x, DY&& dy, bool step, bool accumulate,
                          const graph::gradient_hook* ready = nullptr) {
    if (step) net.backward_step(acts, x, ready);
    else net.backward(acts, x, dy, accumulate, ready);
}

/// One process: every member is the plain single-process operation.
struct one_process {
    int rank() const noexcept { return 0; }
    int size() const noexcept { return 1; }
    bool root() const noexcept { return true; }
    template <class F>
    void collectively(const char*, F&& f) {
        f();
    }
    template <class Model, class Optimizer>
    void share_state(Model&, Optimizer&, rng&) {}
    template <class Model, class Acts, class X, class DY>
    void backward(Model& net, Acts& acts, const X& x, DY&& dy, bool accumulate, bool last) {
        micro_batch_backward(net, acts, x, dy, only_backward_of_step(acts, dy, accumulate, last), accumulate);
    }
    void reduce_gradients() {}
    double sum(double v) { return v; }
};

}  // namespace ctdl::train
