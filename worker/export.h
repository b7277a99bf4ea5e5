// Exports a saved model's weights as NumPy files that numpy, faiss and
// PyTorch read without this project (README, "Export and recommendations").
//
// For each table T of the checkpoint, OUT holds
//   T.npy         float32 ('<f4'), C order, shape (rows, width): the weights
//                 (never optimizer state), one row per key
//   T.ids.npy     int64 ('<i8'), shape (rows,): the id of each row, as in the
//                 data (ValueOf(key); the field is in T.fields.npy)
//   T.fields.npy  uint8 ('|u1'), shape (rows,): the field of each row
//                 (0 user, 1 item, 2 age, 3 gender, 4 occupation, 5 genre,
//                 255 a block of a dense parameter)
// and OUT/tables.json describes the tables, their columns and the fields.
//
// Rows of a sparse table come in checkpoint order (shard by shard), not
// sorted: the exporter streams them, holding one row at a time, so tables
// larger than memory export. A dense block (w0, tower weights) is small and
// written in order: row r holds floats [r*width, (r+1)*width) of the flat
// block, of which the first dense_size count.
//
// Every file is written to a temporary name and renamed; tables.json is
// removed first and written last, so OUT is a complete export exactly when
// tables.json exists.
#ifndef RECSYS_WORKER_EXPORT_H_
#define RECSYS_WORKER_EXPORT_H_

#include <cstdint>
#include <string>

namespace recsys {

struct ExportSummary {
  std::string checkpoint;  // the checkpoint folder exported (after LATEST)
  int epoch = 0;
  std::size_t tables = 0;
  std::uint64_t rows = 0;
};

// Verifies the checkpoint `checkpoint` (a ckpt-<epoch> folder, or a
// --checkpoint-dir with LATEST) in full, then writes the files above into
// `out_dir` (created if missing). Throws InputError naming the file for a
// missing or corrupted checkpoint or an unwritable folder; a failed export
// leaves no tables.json and no temporary files.
ExportSummary ExportCheckpoint(const std::string& checkpoint, const std::string& out_dir);

// The 128-byte header of a NumPy format 1.0 file holding a C-order array of
// `descr` ('<f4', '<i8', '|u1') and shape (rows, cols), or (rows,) when
// cols < 0. Exposed for tests.
std::string NpyHeader(const std::string& descr, std::uint64_t rows, std::int64_t cols);

}  // namespace recsys

#endif  // RECSYS_WORKER_EXPORT_H_
