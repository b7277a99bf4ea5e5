#!/usr/bin/env bash
# The parameter-server path on its own (tests/bench/ps_bench.cc): pull and
# push of R rows of D floats between one worker and S servers, against raw MPI
# exchanges of the same messages, in the same run.
#
#   launch/bench_ps.sh [-s "1 2 4"] [-d "16 32 64"] [-r 500,1000,10000,100000] [-o adam|adagrad|sgd]
#
# BENCH_BIN overrides the binary (default build/tests/bench/recsys_bench_ps);
# MPIRUN_ARGS adds mpirun options. Uses the same mpirun flags as launch/local.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${BENCH_BIN:-$root/build/tests/bench/recsys_bench_ps}"
servers="1 2 4"
dims="16 32 64"
rows="500,1000,10000,100000"
optimizer="adam"
while [ $# -gt 0 ]; do
  case "$1" in
    -s) servers="$2"; shift 2 ;;
    -d) dims="$2"; shift 2 ;;
    -r) rows="$2"; shift 2 ;;
    -o) optimizer="$2"; shift 2 ;;
    *) echo "bench_ps.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ ! -x "$bin" ]; then
  echo "bench_ps.sh: $bin not found; build first (launch/build.sh)" >&2
  exit 2
fi
for s in $servers; do
  for d in $dims; do
    n=$((s + 2))
    flags=()
    [ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
    [ "$n" -gt "$(nproc)" ] && flags+=(--oversubscribe)
    flags+=(--mca btl_vader_single_copy_mechanism none)
    # shellcheck disable=SC2086
    mpirun -n "$n" "${flags[@]}" ${MPIRUN_ARGS:-} "$bin" --dim "$d" --rows "$rows" --optimizer "$optimizer"
  done
done
