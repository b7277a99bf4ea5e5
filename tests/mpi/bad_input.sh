#!/usr/bin/env bash
# Bad input: a clear message naming the file/line or option, a non-zero exit,
# no hang, and no metrics file written.
source "$(dirname "$0")/lib.sh"
d="$work/data"; mkdir -p "$d"

# expect_error RANKS PATTERN ARGS...: the job fails with exit code 2 (bad
# input), says PATTERN, leaves no metrics file. Each case is a row of the
# README's bad-input table ("Checkpoints and failures").
expect_error() {
  local ranks="$1" pattern="$2" rc=0; shift 2
  rm -f "$work/m.jsonl" "$work/m.jsonl.partial"
  run_job "$ranks" "$@" --metrics-out "$work/m.jsonl" || rc=$?
  [ "$rc" -ne 0 ] || fail "expected failure for: $*"
  [ "$rc" -eq 2 ] || fail "exit code $rc (expected 2, bad input) for: $*"
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
# Ids and timestamps: negative, overflowing, not a number.
printf '1\t2\t5\t100\n-1\t3\t5\t100\n' > "$d/ml/u.data"
expect_error 3 "$d/ml/u.data:2: user id '-1' is negative" --format ml-100k --data "$d/ml"
printf '1\t2\t5\t100\n1\t18446744073709551616\t5\t100\n' > "$d/ml/u.data"
expect_error 3 "$d/ml/u.data:2: item id '18446744073709551616' does not fit in 64 bits" --format ml-100k --data "$d/ml"
printf '1\t2\t5\t100\n1\t3\t5\tyesterday\n' > "$d/ml/u.data"
expect_error 3 "$d/ml/u.data:2: expected an integer timestamp, got 'yesterday'" --format ml-100k --data "$d/ml"
printf 'user,item,ts\n1,2,x\n' > "$d/ts.csv"
expect_error 3 "$d/ts.csv:2: expected an integer timestamp, got 'x'" --format csv --data "$d/ts.csv"
# A folder where a file is expected (an unreadable file).
expect_error 3 "$d/ml: cannot open: is a directory, expected a file" --format csv --data "$d/ml"
# Candidates naming a user without data. (A candidate item absent from the
# data is not an error: it joins the item universe, as in NCF's protocol.)
printf '(1,5)\t2\t3\n(9,4)\t1\t3\n' > "$d/u.negative"
expect_error 3 "$d/u.negative:2: user 9 has no interactions in $d/ok.csv" \
  --format csv --data "$d/ok.csv" --eval-candidates "$d/u.negative"
# Options out of range.
expect_error 3 "--batch-size must be positive, got 0" --batch-size 0
expect_error 3 "--topk: expected positive integers separated by commas .* got '0'" --topk 0
expect_error 3 "--lr must be positive, got -1" --lr -1
expect_error 3 "--neg-ratio 15 is larger than the [0-9]+ of the [0-9]+ items that user [0-9]+ has not interacted with" \
  --model mf --loss bce --users 20 --items 20 --interactions-per-user 10 --neg-ratio 15 --epochs 1
# A user with a single interaction has nothing to hold out: counted and
# trained on, not evaluated, not an error.
printf 'user,item,ts\n1,2,3\n1,5,4\n2,3,1\n2,4,2\n3,4,1\n' > "$d/single.csv"
run_job 3 --format csv --data "$d/single.csv" --neg-ratio 1 --eval-negatives 2 --epochs 1 || fail "a user with one interaction failed the job"
grep -q "data: 3 users (1 without a held-out item)" "$work/out.txt" || fail "the user with one interaction is not counted"
echo "ok: a user with one interaction -> $(grep -m1 'without a held-out item' "$work/out.txt")"
echo "all bad inputs refused"
