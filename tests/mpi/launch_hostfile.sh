#!/usr/bin/env bash
# launch/hostfile.sh with a hostfile naming localhost: real jobs with and
# without spare slots, --oversubscribe added only when the ranks exceed the
# hostfile's slots, --allow-run-as-root only as root, RANKS defaulting to
# the slots, and clear refusals of a missing hostfile or a bad -n.
source "$(dirname "$0")/lib.sh"
hf="$root/launch/hostfile.sh"
args=(--model mf --epochs 2 --users 300 --items 200)

# dry_run HOSTFILE ARGS...: the mpirun command hostfile.sh would run.
dry_run() { local f="$1"; shift; "$hf" "$f" "$@" --dry-run -- --model mf; }

printf '# one line per host\nlocalhost slots=4   # more slots than ranks\n' > "$work/hosts4"
printf 'localhost slots=2\n' > "$work/hosts2"
printf 'localhost slots=1\nlocalhost slots=2\n' > "$work/hosts1+2"

cmd="$(dry_run "$work/hosts4" -n 3)"
[[ "$cmd" == "mpirun -n 3 --hostfile $work/hosts4 "* ]] || fail "unexpected command: $cmd"
[[ "$cmd" != *--oversubscribe* ]] || fail "--oversubscribe with 3 ranks on 4 slots: $cmd"
cmd="$(dry_run "$work/hosts2" -n 3)"
[[ "$cmd" == *--oversubscribe* ]] || fail "no --oversubscribe with 3 ranks on 2 slots: $cmd"
cmd="$(dry_run "$work/hosts1+2")"
[[ "$cmd" == "mpirun -n 3 "* && "$cmd" != *--oversubscribe* ]] || fail "ranks should default to the 3 slots: $cmd"
if [ "$(id -u)" -eq 0 ]; then
  [[ "$cmd" == *--allow-run-as-root* ]] || fail "root run without --allow-run-as-root: $cmd"
else
  [[ "$cmd" != *--allow-run-as-root* ]] || fail "--allow-run-as-root for a user: $cmd"
fi
echo "ok: dry runs"

for hosts in hosts4 hosts2; do
  set +e
  timeout 600 "$hf" "$work/$hosts" -n 3 -- "${args[@]}" --metrics-out "$work/$hosts.jsonl" >"$work/out.txt" 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 0 ] || fail "job on $hosts exited $rc"
  grep -q '^recsys-ps: 3 ranks' "$work/out.txt" || fail "not a 3-rank job on $hosts"
  [ "$(metric "$work/$hosts.jsonl" epoch)" = 2 ] || fail "metrics of $hosts incomplete"
  echo "ok: job on $hosts, HR@10 $(metric "$work/$hosts.jsonl" hr@10)"
done

expect_refusal() {
  local pattern="$1"; shift
  if "$hf" "$@" >"$work/out.txt" 2>&1; then fail "accepted: hostfile.sh $*"; fi
  grep -q -- "$pattern" "$work/out.txt" || fail "message should match '$pattern' for: hostfile.sh $*"
}
expect_refusal "hostfile '$work/missing' not found" "$work/missing" -n 3
expect_refusal "-n expects a positive number of ranks, got 'x'" "$work/hosts2" -n x
expect_refusal "usage:"
: > "$work/empty"
expect_refusal "no hosts in" "$work/empty"
echo "ok: refusals"
