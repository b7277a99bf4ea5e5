#!/usr/bin/env bash
# Pull replies from a server on the worker's node are written into the
# worker's shared area (common/transport.h, "Shared areas") instead of sent
# as messages, and so are pushes and the keys of pulls, read there by the
# server: a job reports them (pull_replies_placed, pushes_placed,
# pull_requests_placed), gives exactly the results of a job whose replies,
# pushes and requests are all messages (RECSYS_SHARED_AREA_MB=0,
# --sync runs repeat exactly), and a bad RECSYS_SHARED_AREA_MB stops the job
# with a message naming it.
source "$(dirname "$0")/lib.sh"
placed() {
  python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
servers = rows[-2]["servers"]
print(sum(s["pull_replies_placed"] for s in servers), sum(s["pull_requests"] for s in servers),
      sum(s["pushes_placed"] for s in servers), sum(s["push_requests"] for s in servers),
      sum(s["pull_requests_placed"] for s in servers))
PY
}
# Batches of 4,096 examples of dim 64: each server's reply and push (~2,000
# rows) are above the eager limit (256 KiB, kDefaultEagerLimit), so placed
# replies are also polled for until read; batch-sized ones above 4 KiB
# (PsClient::kMinPlacedBytes) are placed too, smaller ones are messages. The
# requests (~2,000 keys, 16 KB) are placed once their server has placed a reply.
for model in mf neumf; do
  args=(--model "$model" --sync --epochs 2 --users 2000 --items 3000 --dim 64 --batch-size 4096 --servers 2)
  run_job 5 "${args[@]}" --metrics-out "$work/area.jsonl" || fail "$model: job with areas"
  read -r n total pn ptotal rn < <(placed "$work/area.jsonl")
  [ "$n" -gt 0 ] && [ "$n" -le "$total" ] || fail "$model: $n of $total pull replies placed"
  [ "$pn" -gt 0 ] && [ "$pn" -le "$ptotal" ] || fail "$model: $pn of $ptotal pushes placed"
  [ "$rn" -gt 0 ] && [ "$rn" -le "$total" ] || fail "$model: $rn of $total pull requests placed"
  grep -q "[1-9][0-9]* replies and [1-9][0-9]* requests in shared memory), [0-9]* pushes (.*, [1-9][0-9]* in shared memory)" \
    "$work/out.txt" || fail "$model: the server report does not count placed replies, requests and pushes"
  RECSYS_SHARED_AREA_MB=0 run_job 5 "${args[@]}" --metrics-out "$work/msg.jsonl" || fail "$model: job without areas"
  read -r n total pn ptotal rn < <(placed "$work/msg.jsonl")
  [ "$n" -eq 0 ] && [ "$total" -gt 0 ] || fail "$model: $n of $total replies placed without areas"
  [ "$rn" -eq 0 ] || fail "$model: $rn of $total requests placed without areas"
  [ "$pn" -eq 0 ] && [ "$ptotal" -gt 0 ] || fail "$model: $pn of $ptotal pushes placed without areas"
  same_metrics "$work/area.jsonl" "$work/msg.jsonl" || fail "$model: placed replies, pushes or requests changed the results"
done
# Asynchronous, with each worker's next pull in flight beside its pushes:
# requests, replies and pushes are placed too (results differ run to run,
# so only the counts are checked, and that the job completes).
run_job 5 --model mf --epochs 2 --users 2000 --items 3000 --dim 64 --batch-size 4096 --servers 2 \
  --metrics-out "$work/async.jsonl" || fail "asynchronous job with areas"
read -r n total pn ptotal rn < <(placed "$work/async.jsonl")
[ "$n" -gt 0 ] && [ "$pn" -gt 0 ] && [ "$rn" -gt 0 ] \
  || fail "asynchronous: $n replies, $pn pushes, $rn requests of $total pulls placed"
for bad in abc -1 12x 99999999999; do
  if RECSYS_SHARED_AREA_MB="$bad" run_job 3 --epochs 1 --users 50 --items 40; then
    fail "RECSYS_SHARED_AREA_MB=$bad was accepted"
  fi
  grep -q "RECSYS_SHARED_AREA_MB=$bad: expected a whole number of MiB" "$work/out.txt" \
    || fail "no clear error for RECSYS_SHARED_AREA_MB=$bad"
done
echo "ok"
