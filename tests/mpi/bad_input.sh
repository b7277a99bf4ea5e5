#!/usr/bin/env bash
# Bad input: a clear message naming the file/line or option, a non-zero exit,
# no hang, and no metrics file written.
source "$(dirname "$0")/lib.sh"
d="$work/data"; mkdir -p "$d"

# expect_error RANKS PATTERN ARGS...: the job fails, says PATTERN, leaves no metrics file.
expect_error() {
  local ranks="$1" pattern="$2"; shift 2
  rm -f "$work/m.jsonl" "$work/m.jsonl.partial"
  if run_job "$ranks" "$@" --metrics-out "$work/m.jsonl"; then fail "expected failure for: $*"; fi
  grep -qE -- "$pattern" "$work/out.txt" || fail "message should match '$pattern' for: $*"
  [ ! -e "$work/m.jsonl" ] || fail "metrics file written for failing job: $*"
  echo "ok: $* -> $(grep -m1 -E -- "$pattern" "$work/out.txt")"
}

expect_error 3 "unknown model 'nope'" --model nope
expect_error 3 "unknown format 'xml'" --format xml --data x
expect_error 3 "--dim must be positive" --dim 0
expect_error 3 "--epochs must be positive" --epochs -1
expect_error 3 "bogus.*does not exist" --bogus
expect_error 2 "need at least 3 MPI ranks" --epochs 1
expect_error 4 "--servers 3 leaves no worker" --servers 3
expect_error 3 "$d/missing/u.data.*cannot open" --format ml-100k --data "$d/missing"

mkdir -p "$d/ml"; printf '1\t2\t5\t100\n1\t3\t5\n' > "$d/ml/u.data"
expect_error 3 "$d/ml/u.data:2: .*4" --format ml-100k --data "$d/ml"
printf '1\tx\t5\t100\n' > "$d/ml/u.data"
expect_error 3 "$d/ml/u.data:1: " --format ml-100k --data "$d/ml"
: > "$d/ml/u.data"
expect_error 3 "$d/ml/u.data.*empty" --format ml-100k --data "$d/ml"
printf 'user,item,ts\n1,2,3\n4,5\n' > "$d/r.csv"
expect_error 3 "$d/r.csv:3: " --format csv --data "$d/r.csv"
printf 'user,item,ts\n1,2,3\n1,5,4\n2,3,1\n2,4,2\n' > "$d/ok.csv"
printf '(1,5)\t2\t3\n(2,4)\t1\n' > "$d/c.negative"
expect_error 3 "$d/c.negative:2: " --format csv --data "$d/ok.csv" --eval-candidates "$d/c.negative"
echo "all bad inputs refused"
