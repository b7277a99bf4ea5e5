#!/usr/bin/env bash
# The live progress line: with RECSYS_PROGRESS=tty the coordinator redraws
# "epoch N  batches d/t  samples/s  ETA  loss" while an epoch trains; with
# off it prints none. The epoch line and metrics are unaffected.
source "$(dirname "$0")/lib.sh"
# An epoch must outlast the 0.5 s tick. Under the sanitizers
# (RECSYS_SANITIZED) the binary runs several times slower, so a quarter of
# the users do (20,000 users took 2 of CI's minutes instrumented).
users=20000
[ "${RECSYS_SANITIZED:-0}" = 1 ] && users=5000
RECSYS_PROGRESS=tty run_job 3 --model mf --epochs 1 --users $users --items 500 || fail "tty run"
grep -qE 'epoch +1  batches [0-9]+/[0-9]+  samples/s [0-9]+  ETA [0-9]+s  loss [0-9.]+' "$work/out.txt" \
  || fail "no progress line"
grep -qE 'epoch +1  loss [0-9.]+  HR@10' "$work/out.txt" || fail "no epoch line"
RECSYS_PROGRESS=off run_job 3 --model mf --epochs 1 --users $users --items 500 || fail "off run"
if grep -q 'batches [0-9]*/' "$work/out.txt"; then fail "progress printed with RECSYS_PROGRESS=off"; fi
echo ok
