# examples/infer as scripts use it: the same tokens from the embedded and the mapped binary
# for the same seed (the embedded one with the run's tokenizer.json built in, the mapped one
# with the tokenizer from the snapshot's metadata); --print-tokens and --stats formats; the
# exit statuses 2 (bad usage) and 3 (weights that cannot be used), each with a one-line
# message; and the mapped binary on a character-level run's snapshot (CHAR_SNAPSHOT).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run out_var rc_expect)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL ${rc_expect})
    message(FATAL_ERROR "`${ARGN}` exited with ${rc}, expected ${rc_expect}:\n${out}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${out_var}_err "${err}" PARENT_SCOPE)
endfunction()

# count_ids(<var> <--print-tokens line>): the number of comma-separated ids (an error otherwise).
function(count_ids var text)
  string(STRIP "${text}" line)
  if(NOT line MATCHES "^[0-9]+(,[0-9]+)*$")
    message(FATAL_ERROR "--print-tokens printed no id list: ${line}")
  endif()
  string(REPLACE "," ";" ids "${line}")
  list(LENGTH ids n)
  set(${var} ${n} PARENT_SCOPE)
endfunction()

set(args --prompt "Once upon a time" --max-new-tokens 30 --temperature 0.8 --top-k 20 --seed 7 --print-tokens)
run(embedded 0 ${INFER} ${args})
run(mapped 0 ${INFER_MAPPED} ${args})
if(NOT embedded STREQUAL mapped)
  message(FATAL_ERROR "the embedded and the mapped binary differ:\n${embedded}\n${mapped}")
endif()
# The prompt's BPE tokens (as many as the prefill reports) + 30 new tokens, on one line.
run(stats 0 ${INFER} --prompt "Once upon a time" --max-new-tokens 1 --temperature 0 --stats)
if(NOT stats_err MATCHES "^prefill: ([0-9]+) tokens")
  message(FATAL_ERROR "--stats line: ${stats_err}")
endif()
set(prompt_tokens ${CMAKE_MATCH_1})
string(LENGTH "Once upon a time" prompt_chars)
if(NOT prompt_tokens GREATER 0 OR NOT prompt_tokens LESS prompt_chars)
  message(FATAL_ERROR "the BPE tokenizer cut the ${prompt_chars}-character prompt into ${prompt_tokens} tokens")
endif()
count_ids(n "${embedded}")
math(EXPR expected "${prompt_tokens} + 30")
if(NOT n EQUAL expected)
  message(FATAL_ERROR "--print-tokens printed ${n} ids, expected ${prompt_tokens} + 30: ${embedded}")
endif()
string(STRIP "${embedded}" line)
# Text mode: the embedded binary (the run's tokenizer.json built in) and the mapped one (the
# tokenizer from the snapshot's metadata) print the same text.
run(text_out 0 ${INFER} --prompt "Once upon a time" --max-new-tokens 12 --temperature 0)
run(text_mapped 0 ${INFER_MAPPED} --prompt "Once upon a time" --max-new-tokens 12 --temperature 0)
if(NOT text_out STREQUAL text_mapped OR text_out STREQUAL "")
  message(FATAL_ERROR "text mode: the embedded and the mapped binary differ:\n${text_out}\n${text_mapped}")
endif()
# Another seed gives other tokens; --weights FILE gives the same as the built-in file.
run(other 0 ${INFER} --prompt "Once upon a time" --max-new-tokens 30 --temperature 0.8 --top-k 20 --seed 8 --print-tokens)
if(other STREQUAL embedded)
  message(FATAL_ERROR "seeds 7 and 8 gave the same tokens")
endif()
run(by_flag 0 ${INFER_MAPPED} --weights ${SNAPSHOT} ${args})
if(NOT by_flag STREQUAL mapped)
  message(FATAL_ERROR "--weights gave other tokens")
endif()
# Text mode, greedy, from standard input, with --stats.
file(WRITE ${WORK_DIR}/prompt.txt "The dog")
execute_process(COMMAND ${INFER} --temperature 0 --max-new-tokens 20 --stats INPUT_FILE ${WORK_DIR}/prompt.txt
  RESULT_VARIABLE rc OUTPUT_VARIABLE text ERROR_VARIABLE stats)
if(NOT rc EQUAL 0 OR text STREQUAL "")
  message(FATAL_ERROR "text mode failed (${rc}): ${text} ${stats}")
endif()
run(dog 0 ${INFER} --prompt "The dog" --max-new-tokens 0 --print-tokens)
count_ids(dog_tokens "${dog}")
if(NOT stats MATCHES "^prefill: ${dog_tokens} tokens in [0-9.]+ ms; decode: 19 tokens in [0-9.]+ ms \\([0-9.]+ tokens/s\\); peak memory: [0-9.]+ MiB; first token: [0-9.]+ ms after start\n$")
  message(FATAL_ERROR "--stats line (expected a prefill of ${dog_tokens} tokens): ${stats}")
endif()
# The mapped binary on a character-level snapshot: its tokenizer from the "tokenizer"
# metadata, one id per character (16 + 30).
run(chars 0 ${INFER_MAPPED} --weights ${CHAR_SNAPSHOT} ${args})
count_ids(n "${chars}")
if(NOT n EQUAL 46)
  message(FATAL_ERROR "the character-level snapshot: --print-tokens printed ${n} ids, expected 16 + 30: ${chars}")
endif()
# --max-new-tokens 0: no token, so no first one.
run(none 0 ${INFER} --prompt "The dog" --max-new-tokens 0 --stats)
if(NOT none_err MATCHES "^prefill: [0-9]+ tokens in [0-9.]+ ms; decode: 0 tokens in [0-9.]+ ms \\([0-9.]+ tokens/s\\); peak memory: [0-9.]+ MiB; first token: none\n$")
  message(FATAL_ERROR "--stats line without a token: ${none_err}")
endif()
# Bad usage: 2, with a message.
run(o 2 ${INFER} --max-new-tokens lots --prompt x)
if(NOT o_err MATCHES "--max-new-tokens")
  message(FATAL_ERROR "no message naming --max-new-tokens: ${o_err}")
endif()
run(o 2 ${INFER} --frobnicate)
run(o 2 ${INFER} --prompt-tokens 1,2,100000)
# Weights that do not fit the type, or no file: 3.
file(WRITE ${WORK_DIR}/bad.safetensors "not a safetensors file")
run(o 3 ${INFER_MAPPED} --weights ${WORK_DIR}/bad.safetensors --prompt x)
run(o 3 ${INFER_MAPPED} --weights ${WORK_DIR}/missing.safetensors --prompt x)
run(o 0 ${INFER} --help)
message(STATUS "examples/infer: ${line}")
