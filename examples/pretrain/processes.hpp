#pragma once
// The processes a training example runs on, shared by examples/pretrain and examples/finetune:
// one (train::one_process), or several started by mpirun (or --dist) that train
// data-parallel over MPI, where the example was built with MPI (CTDL_EXAMPLE_MPI, set by
// examples/CMakeLists.txt's ctdl_example_mpi).
#include <ctdl/train/peers.hpp>

#if CTDL_EXAMPLE_MPI
#include <ctdl/dist/data_parallel.hpp>
#include <ctdl/dist/mpi.hpp>
#endif

namespace examples {

/// run(peers) on this process's peers: a dist::data_parallel over MPI when `dist` is asked for
/// or mpirun started the process, else train::one_process. Asked for in a build without MPI,
/// a UsageError naming the fix.
template <class UsageError, class Run>
int on_processes(bool dist, Run&& run) {
#if CTDL_EXAMPLE_MPI
    if (dist || ctdl::dist::launched_by_mpirun()) {
        ctdl::dist::mpi comm;
        ctdl::dist::data_parallel<ctdl::dist::mpi> peers{comm};
        return run(peers);
    }
#else
    if (dist) throw UsageError("--dist: this build has no MPI (install libopenmpi-dev and rebuild)");
#endif
    ctdl::train::one_process alone;
    return run(alone);
}

}  // namespace examples
