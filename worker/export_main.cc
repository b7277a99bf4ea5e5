// recsys_export CKPT DIR: exports a saved model as NumPy files (worker/export.h)
// without running a job. No MPI.
#include <cstdio>
#include <exception>
#include <string>

#include "common/error.h"
#include "worker/export.h"

int main(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
    std::printf("usage: recsys_export CHECKPOINT DIR\n"
                "Writes every table of CHECKPOINT (a ckpt-<epoch> folder, or a --checkpoint-dir with LATEST) as\n"
                "DIR/<table>.npy (float32 weights), DIR/<table>.ids.npy (int64), DIR/<table>.fields.npy (uint8)\n"
                "and DIR/tables.json.\n");
    return 0;
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: recsys_export CHECKPOINT DIR\n");
    return 2;
  }
  try {
    const recsys::ExportSummary s = recsys::ExportCheckpoint(argv[1], argv[2]);
    std::printf("export: %s (epoch %d, %zu tables, %llu rows) -> %s/tables.json\n", s.checkpoint.c_str(), s.epoch,
                s.tables, static_cast<unsigned long long>(s.rows), argv[2]);
    return 0;
  } catch (const recsys::InputError& e) {
    std::fprintf(stderr, "recsys_export: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recsys_export: internal error: %s\n", e.what());
    return 3;
  }
}
