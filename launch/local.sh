#!/usr/bin/env bash
# Runs recsys_worker under mpirun on this machine.
#
#   launch/local.sh [-n RANKS] [-- ] [recsys_worker options...]
#
# Adds --allow-run-as-root only when run as root, and --oversubscribe only
# when RANKS exceeds this machine's cores, so on an ordinary account on a
# big node mpirun behaves as usual. RECSYS_BIN overrides the binary
# (default: build/recsys_worker); MPIRUN_ARGS adds mpirun options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ranks=6
if [ "${1:-}" = "-n" ]; then ranks="$2"; shift 2; fi
if [ "${1:-}" = "--" ]; then shift; fi
bin="${RECSYS_BIN:-$root/build/recsys_worker}"
if [ ! -x "$bin" ]; then
  echo "local.sh: $bin not found; build first with launch/build.sh" >&2
  exit 2
fi
flags=()
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
cores="$(nproc)"
[ "$ranks" -gt "$cores" ] && flags+=(--oversubscribe)
# Shared-memory transfers without the cross-memory-attach copy were faster
# on the machines we measured (see README, "Performance").
flags+=(--mca btl_vader_single_copy_mechanism none)
# The coordinator redraws a live progress line only when the user's terminal
# is one (under mpirun its own stdout is always a pty).
if [ -z "${RECSYS_PROGRESS:-}" ]; then
  if [ -t 1 ]; then export RECSYS_PROGRESS=tty; else export RECSYS_PROGRESS=plain; fi
fi
# shellcheck disable=SC2086
exec mpirun -n "$ranks" "${flags[@]}" ${MPIRUN_ARGS:-} "$bin" "$@"
