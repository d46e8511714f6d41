#!/usr/bin/env bash
# Compile cost of the translation units users write: seconds and peak compiler memory with
# g++ at -O2 (the flags ctdl::ctdl gives), for one or more checkouts side by side: wall
# seconds, the compiler's user CPU seconds (less disturbed by other load) and peak MiB.
#   benchmarks/compile/measure.sh [ROOT ...]     (default: this checkout; e.g. an old worktree first)
# Each figure is the minimum of REPEAT runs (default 2); CASES (a regex on the names) picks
# some cases only. Run it on a quiet machine: check `uptime`.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
roots=("$@"); ((${#roots[@]})) || roots=("$here")
repeat=${REPEAT:-2}
contract=$here/../shared/api/contract.cpp
flags=(-std=c++20 -O2 -march=native -fvect-cost-model=dynamic -pthread)
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

# name | source (relative to a root, or absolute) | extra flags (@ROOT@: the root) | -c or link
cases=(
  "contract (compile + link)|$contract||link"
  "examples/pretrain/main.cpp|examples/pretrain/main.cpp||-c"
  "tests/test_layers.cpp|tests/test_layers.cpp|-I@ROOT@/tests|-c"
  "tests/test_pretrain.cpp|tests/test_pretrain.cpp|-I@ROOT@/tests|-c"
  "MLP, trainable form|$here/benchmarks/compile/mlp_forms.cpp||-c"
  "MLP, trainable + frozen|$here/benchmarks/compile/mlp_forms.cpp|-DTWO_FORMS|-c"
  "GPT, trainable form|$here/benchmarks/compile/gpt_forms.cpp||-c"
  "GPT, trainable + frozen|$here/benchmarks/compile/gpt_forms.cpp|-DTWO_FORMS|-c"
)
echo "load: $(uptime | sed 's/.*load average: //')"
printf '| %-28s' "translation unit"; for r in "${roots[@]}"; do printf '| %-30s' "$(git -C "$r" rev-parse --short HEAD 2>/dev/null || echo "$r")"; done; echo "|"
for c in "${cases[@]}"; do
  IFS='|' read -r name src extra mode <<<"$c"
  [[ -n ${CASES:-} && ! $name =~ $CASES ]] && continue
  printf '| %-28s' "$name"
  for r in "${roots[@]}"; do
    [[ $src = /* ]] && file=$src || file=$r/$src
    x=${extra//@ROOT@/$r}
    best_s=""; best_u=""; best_m=""
    for ((i = 0; i < repeat; i++)); do
      # shellcheck disable=SC2086
      if [[ $mode == link ]]; then cmd=(g++ "${flags[@]}" $x -I"$r/include" "$file" -o "$out/a.out")
      else cmd=(g++ "${flags[@]}" $x -I"$r/include" -c "$file" -o "$out/a.o"); fi
      /usr/bin/time -f "%e %U %M" -o "$out/t" "${cmd[@]}" 2>"$out/err" || { echo; cat "$out/err" >&2; exit 1; }
      read -r s u m <"$out/t"
      if [[ -z $best_s ]] || awk "BEGIN{exit !($s < $best_s)}"; then best_s=$s; fi
      if [[ -z $best_u ]] || awk "BEGIN{exit !($u < $best_u)}"; then best_u=$u; fi
      if [[ -z $best_m ]] || ((m < best_m)); then best_m=$m; fi
    done
    printf '| %-30s' "$(printf '%.1f s (user %.1f), %d MiB' "$best_s" "$best_u" $((best_m / 1024)))"
  done
  echo "|"
done
