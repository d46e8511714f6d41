# MPI for the parts of ctdl's own build that use it: the data-parallel tests and header
# checks (tests/), dist_pretrain (benchmarks/) and --dist in the training examples
# (examples/). Included once by the top level, so one find serves them all; MPI::MPI_CXX is
# then visible in every subdirectory. (The library itself needs no MPI: a user's project
# links MPI::MPI_CXX where it includes dist/mpi.hpp.)
#
# Where mpirun is found too, ctdl_mpirun_np2 holds the flags that start 2 processes, as a
# list, and ctdl_mpirun_np2_bar the same separated by | (one -D argument for a cmake -P
# script). Open MPI refuses root and more ranks than cores unless told, and CI runs as root
# on 2 cores.
set(MPI_CXX_SKIP_MPICXX ON CACHE BOOL "ctdl uses MPI's C API only")
find_package(MPI COMPONENTS CXX QUIET)
set(ctdl_mpirun_np2 "")
set(ctdl_mpirun_np2_bar "")
if(MPI_CXX_FOUND AND MPIEXEC_EXECUTABLE)
  execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE ctdl_mpiexec_version ERROR_QUIET)
  set(ctdl_mpirun_np2 ${MPIEXEC_NUMPROC_FLAG} 2)
  if(ctdl_mpiexec_version MATCHES "Open MPI|OpenRTE")
    list(APPEND ctdl_mpirun_np2 --allow-run-as-root --oversubscribe)
  endif()
  string(REPLACE ";" "|" ctdl_mpirun_np2_bar "${ctdl_mpirun_np2}")
endif()
