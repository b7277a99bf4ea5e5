#!/usr/bin/env bash
# The MPI transport (common/transport_mpi.cc): messages around and far above
# the shared-memory eager limit arrive whole and in order
# (transport_check.cc), from 3 senders at once.
source "$(dirname "$0")/lib.sh"
: "${RECSYS_TRANSPORT_CHECK_BIN:?RECSYS_TRANSPORT_CHECK_BIN must point at recsys_transport_check}"
RECSYS_BIN="$RECSYS_TRANSPORT_CHECK_BIN" run_job 4 || { cat "$work/out.txt" >&2; fail "transport_check failed"; }
grep -q "transport_check: ok" "$work/out.txt" || { cat "$work/out.txt" >&2; fail "no ok line"; }
echo "ok"
