#!/usr/bin/env bash
# Runs recsys_worker under mpirun on the hosts of an Open MPI hostfile.
#
#   launch/hostfile.sh HOSTFILE [-n RANKS] [--dry-run] [--] [recsys_worker options...]
#
# HOSTFILE has one host per line, "node01 slots=16" ('#' starts a comment).
# RANKS defaults to the hostfile's slots in all. As launch/local.sh does, it
# adds --allow-run-as-root only when run as root, and --oversubscribe only
# when RANKS exceeds the slots the hostfile gives: a line without slots= is
# counted with this machine's cores if it names this machine (as mpirun
# counts it) and is unknown otherwise, in which case mpirun decides alone.
# --dry-run prints the mpirun command instead of running it.
#
# The binary (RECSYS_BIN, default build/recsys_worker), the data and the
# --metrics-out folder must be at the same path on every host (a shared
# file system); only rank 0 writes the metrics. MPIRUN_ARGS adds mpirun
# options (e.g. "-x LD_LIBRARY_PATH" or "--mca btl_tcp_if_include eth0").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage="usage: launch/hostfile.sh HOSTFILE [-n RANKS] [--dry-run] [--] [recsys_worker options...]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
hostfile="$1"; shift
[ -f "$hostfile" ] || { echo "hostfile.sh: hostfile '$hostfile' not found" >&2; exit 2; }
ranks=""
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; ranks="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if [ -n "$ranks" ] && ! [[ "$ranks" =~ ^[1-9][0-9]*$ ]]; then
  echo "hostfile.sh: -n expects a positive number of ranks, got '$ranks'" >&2; exit 2
fi

# Slots the hostfile gives; "unknown" when a remote host has no slots=.
local_names=" localhost 127.0.0.1 $(hostname) $(hostname -f 2>/dev/null || true) "
slots=0
unknown=0
hosts=0
while read -r line; do
  line="${line%%#*}"
  read -r host rest <<< "$line" || true
  [ -n "${host:-}" ] || continue
  hosts=$((hosts + 1))
  if [[ " $rest " =~ [[:space:]]slots=([0-9]+)[[:space:]] ]]; then
    slots=$((slots + BASH_REMATCH[1]))
  elif [[ "$local_names" == *" $host "* ]]; then
    slots=$((slots + $(nproc)))
  else
    unknown=1
  fi
done < "$hostfile"
[ "$hosts" -gt 0 ] || { echo "hostfile.sh: no hosts in '$hostfile'" >&2; exit 2; }
if [ -z "$ranks" ]; then
  if [ "$unknown" -eq 1 ]; then
    echo "hostfile.sh: '$hostfile' gives no slots= for a remote host; give -n RANKS" >&2; exit 2
  fi
  ranks="$slots"
fi

bin="${RECSYS_BIN:-$root/build/recsys_worker}"
if [ ! -x "$bin" ] && [ "$dry_run" -eq 0 ]; then
  echo "hostfile.sh: $bin not found; build first with launch/build.sh" >&2
  exit 2
fi
flags=(--hostfile "$hostfile")
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
[ "$unknown" -eq 0 ] && [ "$ranks" -gt "$slots" ] && flags+=(--oversubscribe)
# As in local.sh: faster shared-memory transfers between ranks on one host.
flags+=(--mca btl_vader_single_copy_mechanism none)
# shellcheck disable=SC2206
cmd=(mpirun -n "$ranks" "${flags[@]}" ${MPIRUN_ARGS:-} "$bin" "$@")
if [ "$dry_run" -eq 1 ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
