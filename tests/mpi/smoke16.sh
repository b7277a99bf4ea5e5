#!/usr/bin/env bash
# 16 ranks oversubscribed on this machine (the README's main job shape).
source "$(dirname "$0")/lib.sh"
run_job 16 --model fm --epochs 2 --metrics-out "$work/m.jsonl" || fail "16-rank job exited non-zero"
grep -q '16 ranks (1 coordinator, 4 servers, 11 workers)' "$work/out.txt" || fail "unexpected roles"
[ "$(metric "$work/m.jsonl" users)" = 2000 ] || fail "expected 2000 evaluated users"
python3 -c "import sys; assert float(sys.argv[1]) > 0.2" "$(metric "$work/m.jsonl" hr@10)" || fail "HR@10 too low"
echo "ok"
