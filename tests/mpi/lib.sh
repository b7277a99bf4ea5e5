# Helpers for the mpirun integration tests. Source it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
: "${RECSYS_BIN:?RECSYS_BIN must point at recsys_worker}"
export RECSYS_BIN
# For a sanitizer build (RECSYS_SANITIZE, launch/sanitize.sh; other builds
# ignore these). mpirun passes them to every rank. Open MPI never frees what
# MPI_Init allocates, so its leaks are suppressed (tests/lsan.supp); matching
# them needs the slow unwinder, as Open MPI has no frame pointers. Leaks of
# our own code still fail the rank. intercept_tls_get_addr=0: LeakSanitizer
# (GCC 12's) crashed at exit while scanning a bogus dynamic-TLS block
# ("Tracer caught signal 11", "DTLS 6 at 0x3c96-0x400004d98") in
# recsys_recommend under mpirun -n 3, in session 8's build as well on the
# machine of session 9; without tracking dynamic TLS it no longer does.
# Static TLS, stacks and the heap are still scanned. Settings given by the
# caller win.
export ASAN_OPTIONS="${ASAN_OPTIONS:-fast_unwind_on_malloc=0:intercept_tls_get_addr=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
work="$(mktemp -d "${TMPDIR:-/tmp}/recsys_mpi_test.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# run_job RANKS ARGS...: runs a job, output in $work/out.txt, returns its exit code.
run_job() {
  local ranks="$1"; shift
  set +e
  timeout 600 "$root/launch/local.sh" -n "$ranks" -- "$@" >"$work/out.txt" 2>&1
  local rc=$?
  set -e
  return $rc
}

fail() {
  echo "FAIL: $*" >&2
  echo "---- last job output ----" >&2
  tail -n 40 "$work/out.txt" >&2 || true
  exit 1
}

# metric FILE KEY [EPOCH]: prints KEY of the record of EPOCH (default: last) of a metrics file.
metric() {
  python3 - "$@" <<'PY'
import json, sys
path, key = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path) if l.strip()]
row = rows[-1] if len(sys.argv) < 4 else [r for r in rows if r["epoch"] == int(sys.argv[3])][0]
print(row[key])
PY
}

# same_metrics A B: the two metrics files agree on loss, every hr@/ndcg@ and users, epoch by epoch.
same_metrics() {
  python3 - "$1" "$2" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
b = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert len(a) == len(b), f"{len(a)} vs {len(b)} epochs"
for x, y in zip(a, b):
    for k in x:
        if k in ("loss", "users", "examples") or k.startswith("hr@") or k.startswith("ndcg@"):
            assert x[k] == y[k], f"epoch {x['epoch']}: {k} {x[k]!r} != {y[k]!r}"
print(f"identical over {len(a)} epochs")
PY
}
