#!/usr/bin/env bash
#SBATCH --job-name=recsys-ps
# Runs recsys_worker on a Slurm allocation, with mpirun inside the job
# (Debian's Open MPI has no PMI1/PMI2 support, so `srun` would need
# --mpi=pmix; mpirun reads the allocation itself).
#
# Submit (outside an allocation; resources as options, the rest after --
# goes to recsys_worker):
#
#   launch/slurm.sh [--nodes N] [--tasks T] [--time HH:MM:SS] [--partition P]
#                   [--ranks R] [--out DIR] [--job-name NAME] [--sbatch "ARGS"]
#                   [--] [recsys_worker options...]
#
# It prints sbatch's "Submitted batch job ID" and where the job writes:
# DIR/ID.out (the job's output) and the job's folder DIR/ID/ with
# metrics.jsonl (--metrics-out, unless the options name another file), its
# saved configuration metrics.jsonl.config and job.txt (allocation and
# command). DIR defaults to ./runs. --tasks (default 4) is the number of
# Slurm tasks (one MPI rank each); --ranks R > T starts R ranks on T slots
# (--oversubscribe), for small test allocations. --sbatch passes more
# options through (e.g. "--account=proj --mem=8G").
#
# Or submit it with sbatch directly, from the repository's root:
#
#   sbatch -N 2 -n 32 -t 01:00:00 -p batch launch/slurm.sh -- --model fm --epochs 10
#
# Inside an allocation (the batch job itself, or salloc) it runs the job:
# mpirun with one rank per Slurm task, --allow-run-as-root only as root.
# The binary, data and DIR must be on a file system every node sees.
set -euo pipefail

if [ -z "${SLURM_JOB_ID:-}" ]; then
  # ---- submit ----
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  usage="usage: launch/slurm.sh [--nodes N] [--tasks T] [--time HH:MM:SS] [--partition P] [--ranks R] [--out DIR] [--job-name NAME] [--sbatch \"ARGS\"] [--] [recsys_worker options...]"
  nodes=1 tasks=4 time="01:00:00" partition="" ranks="" out="$PWD/runs" name="recsys-ps" extra=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes|--tasks|--time|--partition|--ranks|--out|--job-name|--sbatch)
        [ $# -ge 2 ] || { echo "slurm.sh: $1 needs a value" >&2; echo "$usage" >&2; exit 2; }
        case "$1" in
          --nodes) nodes="$2" ;; --tasks) tasks="$2" ;; --time) time="$2" ;; --partition) partition="$2" ;;
          --ranks) ranks="$2" ;; --out) out="$2" ;; --job-name) name="$2" ;; --sbatch) extra="$2" ;;
        esac
        shift 2 ;;
      -h|--help) echo "$usage"; exit 0 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  for v in "nodes:$nodes" "tasks:$tasks" ${ranks:+"ranks:$ranks"}; do
    [[ "${v#*:}" =~ ^[1-9][0-9]*$ ]] || { echo "slurm.sh: --${v%%:*} expects a positive number, got '${v#*:}'" >&2; exit 2; }
  done
  bin="${RECSYS_BIN:-$root/build/recsys_worker}"
  [ -x "$bin" ] || { echo "slurm.sh: $bin not found; build first with launch/build.sh" >&2; exit 2; }
  command -v sbatch >/dev/null || { echo "slurm.sh: sbatch not found (not on a Slurm cluster?)" >&2; exit 2; }
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
  sbatch_args=(--job-name "$name" --nodes "$nodes" --ntasks "$tasks" --time "$time" --output "$out/%j.out" --export ALL)
  [ -n "$partition" ] && sbatch_args+=(--partition "$partition")
  # shellcheck disable=SC2206
  [ -n "$extra" ] && sbatch_args+=($extra)
  # The batch job runs a copy of this script from Slurm's spool folder:
  # tell it where the repository, the binary and the output folder are.
  submitted="$(RECSYS_ROOT="$root" RECSYS_BIN="$bin" RECSYS_JOB_OUT="$out" RECSYS_RANKS="$ranks" \
               sbatch "${sbatch_args[@]}" "$root/launch/slurm.sh" -- "$@")"
  echo "$submitted"
  id="${submitted##* }"
  echo "slurm.sh: output $out/$id.out, metrics $out/$id/metrics.jsonl"
  exit 0
fi

# ---- inside the allocation ----
if [ "${1:-}" = "--" ]; then shift; fi
root="${RECSYS_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}"
bin="${RECSYS_BIN:-$root/build/recsys_worker}"
[ -x "$bin" ] || { echo "slurm.sh: $bin not found (submit from the repository's root, or set RECSYS_BIN)" >&2; exit 2; }
slots="${SLURM_NTASKS:-}"
[ -n "$slots" ] || { echo "slurm.sh: SLURM_NTASKS is not set; submit with --ntasks (-n)" >&2; exit 2; }
ranks="${RECSYS_RANKS:-}"
[ -n "$ranks" ] || ranks="$slots"
jobdir="${RECSYS_JOB_OUT:-${SLURM_SUBMIT_DIR:-$PWD}/runs}/$SLURM_JOB_ID"
mkdir -p "$jobdir"

args=("$@")
given_metrics=0
for a in "${args[@]}"; do
  [[ "$a" == --metrics-out || "$a" == --metrics-out=* ]] && given_metrics=1
done
[ "$given_metrics" -eq 1 ] || args+=(--metrics-out "$jobdir/metrics.jsonl")

flags=()
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
[ "$ranks" -gt "$slots" ] && flags+=(--oversubscribe)
flags+=(--mca btl_vader_single_copy_mechanism none)
# shellcheck disable=SC2206
cmd=(mpirun -n "$ranks" "${flags[@]}" ${MPIRUN_ARGS:-} "$bin" "${args[@]}")
{
  echo "job $SLURM_JOB_ID on ${SLURM_JOB_NODELIST:-?}: ${SLURM_JOB_NUM_NODES:-?} node(s), $slots task(s), $ranks rank(s)"
  echo "started $(date -Iseconds) in $PWD"
  echo "command: ${cmd[*]}"
} | tee "$jobdir/job.txt"
set +e
"${cmd[@]}"
rc=$?
set -e
echo "finished $(date -Iseconds) with exit code $rc" | tee -a "$jobdir/job.txt"
exit "$rc"
