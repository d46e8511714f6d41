# Runs one compile-fail case: the program must NOT compile, and the compiler's first
# diagnostic -- from its "In instantiation of ..." header down to and including the first
# "error:" line, which is what a person reads first -- must match the regex given on the
# case's first line as `// expect: REGEX`. "In file included from" lines are skipped.
# The mistake must be reported once: exactly one "error:" line, and at most 40 lines in all.
#   cmake -DCXX=... -DINCLUDE=... -DSOURCE=... -DFLAGS=... -P ctdl_compile_fail.cmake
file(STRINGS ${SOURCE} first LIMIT_COUNT 1)
string(REGEX REPLACE "^// expect: " "" expect "${first}")
if(expect STREQUAL first)
  message(FATAL_ERROR "${SOURCE}: the first line must be `// expect: REGEX`")
endif()
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only ${flags} -I${INCLUDE} ${SOURCE}
  RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
string(REPLACE ";" "," err_semicolons "${err}")
string(REPLACE "\n" ";" lines "${err_semicolons}")
set(head "")
foreach(line IN LISTS lines)
  if(line MATCHES "In file included from" OR line MATCHES "^ +from ")
    continue()
  endif()
  string(APPEND head "\n${line}")
  if(line MATCHES "error:")
    break()
  endif()
endforeach()
if(NOT head MATCHES "${expect}")
  message(FATAL_ERROR "${SOURCE}: the first error does not match `${expect}`:\n${head}\n\n(full output)\n${err}")
endif()
string(REGEX MATCHALL "error:" errors "${err}")
list(LENGTH errors error_count)
list(LENGTH lines line_count)
if(NOT error_count EQUAL 1 OR line_count GREATER 41)
  message(FATAL_ERROR "${SOURCE}: the mistake must give one error and at most 40 lines; it gave ${error_count} errors in ${line_count} lines:\n${err}")
endif()
message(STATUS "refused as expected (${line_count} lines):${head}")
