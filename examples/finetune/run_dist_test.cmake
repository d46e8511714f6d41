# examples/finetune on 2 processes (ctest: "example_finetune: dist (mpirun -np 2)").
# FINETUNE, FROM (a pretraining run's folder), WORK_DIR, MPIEXEC, MPI_FLAGS (separated by |).
string(REPLACE "|" ";" mpi_flags "${MPI_FLAGS}")
set(ENV{OMPI_ALLOW_RUN_AS_ROOT} 1)
set(ENV{OMPI_ALLOW_RUN_AS_ROOT_CONFIRM} 1)
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Started by mpirun, without --dist: it must notice, and only rank 0 prints the table.
execute_process(COMMAND "${MPIEXEC}" ${mpi_flags} "${FINETUNE}" --from "${FROM}" --steps 6 --threads 1 --out out
                WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e TIMEOUT 500)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun -np 2 finetune: exit status '${rc}'\n--- stdout:\n${o}\n--- stderr:\n${e}")
endif()
if(NOT o MATCHES "1 threads x 2 processes \\(batch 16 each\\)")
  message(FATAL_ERROR "the run does not say it ran on 2 processes:\n${o}")
endif()
foreach(method full lora)
  string(REGEX MATCHALL "\n${method} +[0-9]+ +[0-9.]+ MB +[0-9]+% +[0-9]+% +[0-9.]+ +[0-9.]+" rows "${o}")
  list(LENGTH rows n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "expected one '${method}' row (rank 0's), got ${n}:\n${o}")
  endif()
  if(NOT EXISTS "${WORK_DIR}/out/${method}.csv")
    message(FATAL_ERROR "rank 0 wrote no ${method}.csv")
  endif()
endforeach()

# A snapshot that is not there: both processes stop with the error, and nothing is written.
execute_process(COMMAND "${MPIEXEC}" ${mpi_flags} "${FINETUNE}" --dist --from missing --steps 6 --out out2
                WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e TIMEOUT 120)
string(REGEX MATCHALL "finetune: ctdl: dist: reading the pretraining snapshot failed, and all 2 ranks stop" said "${e}")
list(LENGTH said n)
if(rc EQUAL 0 OR NOT n EQUAL 2 OR EXISTS "${WORK_DIR}/out2")
  message(FATAL_ERROR "a missing snapshot: expected both ranks to stop naming it, and no out2 (exit status '${rc}'):\n"
                      "--- stdout:\n${o}\n--- stderr:\n${e}")
endif()
