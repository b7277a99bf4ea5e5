#!/usr/bin/env bash
# launch/slurm.sh against a real one-node Slurm cluster from Debian's
# packages (slurmctld slurmd slurm-client munge; see MACHINE-NOTES.md):
# munged, slurmctld and slurmd run in the foreground as children of this
# script, with every path in a temp folder; the job is submitted with
# sbatch through launch/slurm.sh, waited for, its metrics checked, and the
# daemons stopped by PID. Every client call is guarded by `timeout` (a dead
# munged makes them retry for minutes). SKIPs (77) without the packages.
# RECSYS_SLURM_LOG=FILE keeps a transcript (used for the README).
source "$(dirname "$0")/lib.sh"
for tool in slurmctld slurmd munged mungekey sbatch squeue scontrol; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    echo "SKIP: $tool not found; install Slurm to run this test: apt-get install -y slurmctld slurmd slurm-client munge"
    exit 77
  fi
done
export PATH="$PATH:/usr/sbin"
if [ "$(id -u)" -ne 0 ]; then
  # slurmd must start jobs as their user and munged runs as this user: a
  # one-node cluster of one user works only as root here.
  echo "SKIP: the one-node Slurm test runs as root (slurmd starts the jobs)"
  exit 77
fi

s="$work/slurm"
mkdir -p "$s/munge" "$s/state" "$s/spool" "$s/runs"
# munged requires every folder above its socket to be searchable by all.
chmod 0755 "$work" "$s" "$s/munge"
pids=()
stop_daemons() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap stop_daemons EXIT
log="${RECSYS_SLURM_LOG:-$s/transcript.txt}"
: > "$log"
note() { echo "$*" | tee -a "$log"; }
daemon_logs() {
  local f
  for f in "$s/munged.log" "$s/slurmctld.log" "$s/slurmd.log"; do
    echo "---- $f ----" >&2; tail -n 15 "$f" >&2 2>/dev/null || true
  done
}
die() { daemon_logs; fail "$@"; }

# Two free TCP ports for slurmctld and slurmd.
read -r ctld_port slurmd_port < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)
cpus="$(nproc)"
cat > "$s/slurm.conf" <<CONF
ClusterName=recsystest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$s/munge/munge.socket.2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldLogFile=$s/slurmctld.log
SlurmdLogFile=$s/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$s/slurm.conf"

start=$EPOCHREALTIME
mungekey --create --keyfile "$s/munge/munge.key" >/dev/null 2>&1 || die "mungekey failed"
munged -F --socket "$s/munge/munge.socket.2" --key-file "$s/munge/munge.key" --pid-file "$s/munge/munged.pid" \
  --log-file "$s/munged.log" --seed-file "$s/munge/munged.seed" >>"$s/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$s/munge/munge.socket.2" ] || ! kill -0 "${pids[0]}" 2>/dev/null && break; sleep 0.1; done
[ -S "$s/munge/munge.socket.2" ] || die "munged did not start"
slurmctld -D -f "$s/slurm.conf" >>"$s/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$s/slurm.conf" >>"$s/slurmd.log" 2>&1 &
pids+=($!)
ready=0
for _ in $(seq 60); do
  if timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null | grep -qE '^localhost (idle|mix|alloc)'; then ready=1; break; fi
  sleep 0.5
done
[ "$ready" -eq 1 ] || die "the node did not become idle"
note "\$ sinfo"
timeout 5 sinfo | tee -a "$log"

# The job: 3 ranks (the smallest recsys-ps job) on 2 Slurm tasks, so the
# script's --oversubscribe rule is exercised on a 2-core machine too.
tasks=2
[ "$cpus" -ge 2 ] || tasks=1
cmd=("$root/launch/slurm.sh" --nodes 1 --tasks "$tasks" --ranks 3 --time 00:05:00 --partition debug
     --out "$s/runs" -- --model mf --epochs 2 --users 300 --items 200 --topk 5,10 --sync)
note "\$ launch/slurm.sh --nodes 1 --tasks $tasks --ranks 3 --time 00:05:00 --partition debug --out runs -- --model mf --epochs 2 --users 300 --items 200 --topk 5,10 --sync"
timeout 30 "${cmd[@]}" > "$s/submit.txt" 2>&1 || { cat "$s/submit.txt" >&2; die "submission failed"; }
sed "s|$s/||g" "$s/submit.txt" | tee -a "$log"
id="$(sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p' "$s/submit.txt")"
[ -n "$id" ] || die "no job id in: $(cat "$s/submit.txt")"

# Wait for the job to leave the queue, then read its final state.
state=""
for _ in $(seq 240); do
  state="$(timeout 5 scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
  case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) break ;; esac
  sleep 0.5
done
note "\$ scontrol show job $id | grep -E 'JobState|RunTime|NumNodes'"
timeout 5 scontrol show job "$id" | grep -E 'JobState|RunTime|NumNodes' | sed 's/^ *//' | tee -a "$log"
[ "$state" = COMPLETED ] || { cat "$s/runs/$id.out" >&2 2>/dev/null; die "job $id ended $state"; }
note "\$ cat runs/$id.out"
sed "s|$s/||g" "$s/runs/$id.out" | tee -a "$log"
m="$s/runs/$id/metrics.jsonl"
[ -f "$m" ] || die "no metrics file $m"
[ -f "$m.config" ] || die "no saved configuration $m.config"
[ -f "$s/runs/$id/job.txt" ] || die "no job.txt"
grep -q '^recsys-ps: 3 ranks' "$s/runs/$id.out" || die "not a 3-rank job"
python3 - "$m" <<'PY' || die "metrics incomplete"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
final = rows.pop()
assert final["final"] is True and final["epoch"] == 2, final
assert [r["epoch"] for r in rows] == [1, 2], rows
for r in rows:
    assert r["users"] == 300 and 0 <= r["ndcg@5"] <= r["hr@5"] <= r["hr@10"] <= 1, r
PY
note "\$ ls runs/$id/ && tail -n 1 runs/$id/metrics.jsonl | cut -c1-150"
ls "$s/runs/$id" | tee -a "$log"
tail -n 1 "$m" | cut -c1-150 | tee -a "$log"
end=$EPOCHREALTIME
note "(cluster start, job and checks: $(awk "BEGIN { printf \"%.1f\", $end - $start }") s)"
echo "ok"
