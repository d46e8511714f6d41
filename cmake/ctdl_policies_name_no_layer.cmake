# The execution policies know memory, copies, threads, GEMM, maps and reductions, never a
# layer: fails if exec/cpu.hpp or exec/device.hpp names one (ops run through
# ctdl::launch from their own folders, include/ctdl/ops/).
#   cmake -DINCLUDE=... -P ctdl_policies_name_no_layer.cmake
set(words layer_norm rms_norm attention softmax cross_entropy embedding mse)
foreach(policy exec/cpu.hpp exec/device.hpp)
  file(READ ${INCLUDE}/ctdl/${policy} text)
  foreach(w IN LISTS words)
    string(FIND "${text}" "${w}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "${policy} names the layer or op '${w}': move it into include/ctdl/ops/")
    endif()
  endforeach()
endforeach()
message(STATUS "exec/cpu.hpp and exec/device.hpp name no layer")
