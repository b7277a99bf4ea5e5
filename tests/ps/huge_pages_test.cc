#include "ps/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace recsys {
namespace {

bool AlignedToHugePage(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % kHugePageBytes == 0; }

TEST(HugePagesTest, LargeAllocationsAreAlignedToHugePagesAndSmallOnesAreOrdinary) {
  if (!TableHugePagesOn()) GTEST_SKIP() << "RECSYS_HUGE_PAGES=0";
  void* big = AllocateTableMemory(3 * kHugePageBytes + 100);
  EXPECT_TRUE(AlignedToHugePage(big));
  std::memset(big, 1, 3 * kHugePageBytes + 100);  // all of it is usable
  FreeTableMemory(big, 3 * kHugePageBytes + 100);
  void* small = AllocateTableMemory(1000);
  std::memset(small, 1, 1000);
  FreeTableMemory(small, 1000);
}

TEST(HugePagesTest, TableVectorKeepsItsContentsAcrossHugeAndOrdinarySizes) {
  TableVector<std::uint32_t> v;
  const bool on = TableHugePagesOn();
  for (std::uint32_t i = 0; i < (kHugePageBytes / 4) * 3; ++i) v.push_back(i * 7u);
  if (on) {
    EXPECT_TRUE(AlignedToHugePage(v.data()));
  }
  for (std::uint32_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], i * 7u) << i;
  v.resize(10);
  v.shrink_to_fit();
  ASSERT_EQ(v.size(), 10u);
  EXPECT_EQ(v[9], 63u);
}

// Where the kernel grants huge pages on request (transparent huge pages in
// "madvise" or "always" mode), a large table array gets them.
TEST(HugePagesTest, LargeArraysGetHugePagesWhereTheKernelGrantsThem) {
  if (!TableHugePagesOn()) GTEST_SKIP() << "RECSYS_HUGE_PAGES=0";
  std::ifstream mode_file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(mode_file, mode);
  if (mode.find("[never]") != std::string::npos || mode.empty()) {
    GTEST_SKIP() << "transparent huge pages are off on this machine (" << mode << ")";
  }
  const auto huge_kb = [] {
    std::ifstream smaps("/proc/self/smaps_rollup");
    std::string line;
    while (std::getline(smaps, line)) {
      if (line.rfind("AnonHugePages:", 0) == 0) return std::stol(line.substr(14));
    }
    return -1L;
  };
  const long before = huge_kb();
  if (before < 0) GTEST_SKIP() << "no AnonHugePages in /proc/self/smaps_rollup";
  TableVector<char> v(8 * kHugePageBytes, 1);
  const long after = huge_kb();
  // The kernel may be short of free 2 MiB blocks; one of four is enough to
  // show that the advice is given.
  EXPECT_GE(after - before, static_cast<long>(2 * kHugePageBytes / 1024)) << "AnonHugePages " << before << " -> "
                                                                         << after << " kB";
}

}  // namespace
}  // namespace recsys
