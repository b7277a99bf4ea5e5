// Refuses, with a message, to start on a CPU without the instruction set the
// build targets (RECSYS_ARCH in CMakeLists.txt; x86-64-v3 by default: AVX2,
// FMA, BMI2), instead of dying of SIGILL at the first such instruction.
//
// Linked into every executable (recsys_cpu_checked() in CMakeLists.txt) and
// compiled for the baseline x86-64 itself. It runs as a constructor of
// priority 101, before the executable's C++ static initialisers (which are
// compiled for RECSYS_ARCH) and before main.
#include <unistd.h>

#include <cstdio>

namespace {

__attribute__((constructor(101))) void RecsysCheckCpu() {
#if defined(RECSYS_NEEDS_X86_64_V3) && defined(__x86_64__)
  __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
  // GCC 12 knows the level as a whole (MOVBE, LZCNT, F16C and the rest).
  const bool ok = __builtin_cpu_supports("x86-64-v3");
#else
  const bool ok = __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                  __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("sse4.2");
#endif
  if (ok) return;
  std::fprintf(stderr,
               "recsys-ps: this build targets x86-64-v3 (AVX2, FMA, BMI2: Intel Haswell, AMD Zen and later), "
               "which this CPU lacks. Rebuild for it with: launch/build.sh -DRECSYS_ARCH=x86-64 "
               "(or -DRECSYS_ARCH=native on the machine that runs the job).\n");
  _exit(2);
#endif
}

}  // namespace
