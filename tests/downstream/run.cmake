# Builds and runs tests/downstream as a separate project that uses ctdl through MODE
# (find_package after installing into PREFIX, or add_subdirectory of SOURCE_DIR).
# MODE bare_install first configures SOURCE_DIR into BINARY_DIR as a machine without Catch2
# and Google Benchmark would (tests and benchmarks then left out), then installs that.
file(REMOVE_RECURSE ${WORK_DIR})
if(MODE STREQUAL "bare_install")
  file(REMOVE_RECURSE ${BINARY_DIR})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -DCMAKE_CXX_COMPILER=${CXX}
                          -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON
                          -DCTDL_CUDA=OFF -DCTDL_BUILD_EXAMPLES=OFF
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "configuring ctdl without Catch2 and Google Benchmark failed:\n${out}")
  endif()
  if(NOT out MATCHES "tests are not built")
    message(FATAL_ERROR "configuring ctdl without Catch2 did not say that the tests are left out:\n${out}")
  endif()
  set(MODE find_package)
endif()
if(MODE STREQUAL "find_package")
  file(REMOVE_RECURSE ${PREFIX})
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${PREFIX} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cmake --install failed")
  endif()
  set(config -DCMAKE_PREFIX_PATH=${PREFIX})
else()
  set(config -DCTDL_SOURCE_DIR=${SOURCE_DIR})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/downstream -B ${WORK_DIR} -DMODE=${MODE}
                        -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release ${config} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the downstream project failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the downstream project failed")
endif()
execute_process(COMMAND ${WORK_DIR}/downstream RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "downstream ok")
  message(FATAL_ERROR "the downstream program failed (${rc}): ${out}")
endif()
