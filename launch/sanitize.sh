#!/usr/bin/env bash
# The sanitizer run (CI runs it after launch/test.sh): builds recsys-ps with
# AddressSanitizer + UndefinedBehaviorSanitizer (RECSYS_SANITIZE=ON,
# RelWithDebInfo) into build-asan/ or $ASAN_BUILD_DIR and runs ctest there,
# unit tests and mpirun jobs alike. Any ASan report, leak outside Open MPI, or
# UBSan finding fails the test that hit it. Extra arguments go to ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${ASAN_BUILD_DIR:-$root/build-asan}"
"$root/launch/install_deps.sh"
# -g1: line tables only, enough for the sanitizers' stack traces with file
# and line; full -g made the instrumented build ~25% slower to compile.
BUILD_DIR="$build" BUILD_TYPE=RelWithDebInfo "$root/launch/build.sh" -DRECSYS_SANITIZE=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
# The unit tests need no options (UBSan findings abort: the build uses
# -fno-sanitize-recover); stack traces make a finding readable. The mpirun
# jobs get their options (Open MPI's leaks suppressed) from tests/mpi/lib.sh.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
cd "$build"
# Every test; a few run smaller here (RECSYS_SANITIZED, set by
# tests/mpi/CMakeLists.txt): mpi_ml100k_quality runs 2 of its 5 jobs,
# mpi_async_vs_sync_16_ranks 6 ranks, mpi_progress a quarter of the users.
ctest --output-on-failure -j2 "$@"
