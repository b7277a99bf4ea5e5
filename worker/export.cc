#include "worker/export.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/keys.h"
#include "common/table_spec.h"
#include "ps/checkpoint.h"

namespace recsys {
namespace {

namespace fs = std::filesystem;

// Every header is padded to this many bytes (a multiple of 64, as NumPy
// writes them), so the row count can be patched in after streaming the rows.
constexpr std::size_t kNpyHeaderBytes = 128;

const char* FieldName(std::uint8_t field) {
  switch (field) {
    case kFieldUser: return "user";
    case kFieldItem: return "item";
    case kFieldAge: return "age";
    case kFieldGender: return "gender";
    case kFieldOccupation: return "occupation";
    case kFieldGenre: return "genre";
    case kFieldDense: return "dense";
    default: return "other";
  }
}

// A .npy file written to path.tmp: a placeholder header, then the data
// appended; Commit() writes the real header, fsyncs and renames. Destroyed
// uncommitted, it removes the temporary file.
class NpyWriter {
 public:
  NpyWriter(std::string path, std::string descr, std::int64_t cols)
      : path_(std::move(path)), tmp_(path_ + ".tmp"), descr_(std::move(descr)), cols_(cols) {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr) ThrowInputError(tmp_, 0, Concat("cannot open for writing: ", std::strerror(errno)));
    Write(NpyHeader(descr_, 0, cols_));
  }
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;
  ~NpyWriter() {
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
    }
  }

  void Append(const void* data, std::size_t bytes) {
    if (bytes > 0 && std::fwrite(data, 1, bytes, file_) != bytes) Fail();
  }

  void Commit(std::uint64_t rows) {
    if (std::fseek(file_, 0, SEEK_SET) != 0) Fail();
    Write(NpyHeader(descr_, rows, cols_));
    if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0) Fail();
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) Fail();
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      ThrowInputError(path_, 0, Concat("cannot rename ", tmp_, " into place: ", std::strerror(errno)));
    }
  }

 private:
  void Write(const std::string& s) { Append(s.data(), s.size()); }
  [[noreturn]] void Fail() { ThrowInputError(tmp_, 0, Concat("write failed: ", std::strerror(errno))); }

  std::string path_, tmp_, descr_;
  std::int64_t cols_;
  std::FILE* file_ = nullptr;
};

// One table's three files and what tables.json says about it.
struct TableOut {
  TableSpec spec;
  std::unique_ptr<NpyWriter> weights, ids, fields;
  std::uint64_t rows = 0;
  std::map<std::uint8_t, std::uint64_t> rows_by_field;
  std::vector<Real> dense;         // a dense block, in row order
  std::vector<bool> dense_seen;    // which of its rows the checkpoint holds
};

std::string Setting(const Manifest& m, const std::string& name) {
  for (const auto& [n, v] : m.settings) {
    if (n == name) return v;
  }
  return "";
}

// What the columns of a table hold, for the model families of models/.
nlohmann::ordered_json Columns(const std::string& model, int dim, const TableSpec& spec) {
  nlohmann::ordered_json c = nlohmann::ordered_json::object();
  if (spec.dense()) {
    c["weights"] = {0, spec.width};
    return c;
  }
  if (spec.name == "emb" && spec.width == dim + 1) {
    // The factorisation layout (models/mf.h): factors, then the linear weight.
    c["embedding"] = {0, dim};
    c["bias"] = {dim, dim + 1};
  } else if (model == "neumf" && spec.width == 2 * dim) {
    c["gmf_embedding"] = {0, dim};
    c["mlp_embedding"] = {dim, 2 * dim};
  } else {
    c["embedding"] = {0, spec.width};
  }
  return c;
}

}  // namespace

std::string NpyHeader(const std::string& descr, std::uint64_t rows, std::int64_t cols) {
  const std::string shape = cols < 0 ? Concat("(", rows, ",)") : Concat("(", rows, ", ", cols, ")");
  std::string dict = Concat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  const std::size_t preamble = 10;  // magic (6), version (2), header length (2)
  RECSYS_CHECK(preamble + dict.size() + 1 <= kNpyHeaderBytes, "npy header too long: ", dict);
  dict.append(kNpyHeaderBytes - preamble - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  const std::uint16_t len = static_cast<std::uint16_t>(dict.size());
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(len >> 8));
  return out + dict;
}

ExportSummary ExportCheckpoint(const std::string& checkpoint, const std::string& out_dir) {
  const std::string dir = ResolveCheckpoint(checkpoint);
  const Manifest m = VerifyCheckpoint(dir);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir, ec)) {
    ThrowInputError(out_dir, 0, Concat("cannot create the export folder (--export-embeddings): ", ec.message()));
  }
  // From here until the end, out_dir is not a complete export.
  fs::remove(out_dir + "/tables.json", ec);

  const std::uint64_t seed = std::strtoull(Setting(m, "--seed").c_str(), nullptr, 10);
  std::vector<TableOut> out(m.tables.size());
  for (std::size_t t = 0; t < m.tables.size(); ++t) {
    TableOut& o = out[t];
    o.spec = m.tables[t];
    const std::string base = Concat(out_dir, "/", o.spec.name);
    o.weights = std::make_unique<NpyWriter>(base + ".npy", "<f4", o.spec.width);
    o.ids = std::make_unique<NpyWriter>(base + ".ids.npy", "<i8", -1);
    o.fields = std::make_unique<NpyWriter>(base + ".fields.npy", "|u1", -1);
    if (o.spec.dense()) {
      const auto rows = static_cast<std::size_t>(o.spec.dense_rows());
      o.dense.assign(rows * static_cast<std::size_t>(o.spec.width), 0.0f);
      o.dense_seen.assign(rows, false);
    }
  }

  for (const ShardFileInfo& s : m.shards) {
    const std::string path = dir + "/" + s.name;
    const ShardFileInfo got = ReadShardFile(path, [&](const TableSpec& spec, int, Key key, const Real* values) {
      if (spec.id >= out.size()) ThrowInputError(path, 0, Concat("table ", spec.id, " is not in the MANIFEST"));
      TableOut& o = out[spec.id];
      const std::size_t width = static_cast<std::size_t>(spec.width);
      if (spec.dense()) {
        const std::size_t r = static_cast<std::size_t>(ValueOf(key));  // checked by ReadShardFile
        std::copy(values, values + width, o.dense.begin() + static_cast<std::ptrdiff_t>(r * width));
        o.dense_seen[r] = true;
        return;
      }
      // Only the weights: the optimizer state after them stays behind.
      o.weights->Append(values, width * sizeof(Real));
      const std::int64_t id = static_cast<std::int64_t>(ValueOf(key));
      const std::uint8_t field = FieldOf(key);
      o.ids->Append(&id, sizeof(id));
      o.fields->Append(&field, sizeof(field));
      ++o.rows;
      ++o.rows_by_field[field];
    });
    // The rows were used as they were read: refuse a file that changed since
    // it was verified.
    if (got.checksum != s.checksum) {
      ThrowInputError(path, 0, "changed while it was being exported (checksum differs from the verified one)");
    }
  }

  ExportSummary summary;
  summary.checkpoint = dir;
  summary.epoch = m.epoch;
  summary.tables = out.size();
  const int dim = std::atoi(Setting(m, "--dim").c_str());
  nlohmann::ordered_json tables = nlohmann::ordered_json::array();
  for (TableOut& o : out) {
    if (o.spec.dense()) {
      // A row the checkpoint lacks was never pulled: it still has the value
      // the server would create it with.
      const std::size_t width = static_cast<std::size_t>(o.spec.width);
      for (std::size_t r = 0; r < o.dense_seen.size(); ++r) {
        if (!o.dense_seen[r]) InitRow(o.spec, seed, MakeKey(kFieldDense, r), o.dense.data() + r * width);
        const std::int64_t id = static_cast<std::int64_t>(r);
        const std::uint8_t field = kFieldDense;
        o.ids->Append(&id, sizeof(id));
        o.fields->Append(&field, sizeof(field));
      }
      o.weights->Append(o.dense.data(), o.dense.size() * sizeof(Real));
      o.rows = o.dense_seen.size();
      o.rows_by_field[kFieldDense] = o.rows;
    }
    o.weights->Commit(o.rows);
    o.ids->Commit(o.rows);
    o.fields->Commit(o.rows);
    summary.rows += o.rows;

    nlohmann::ordered_json j;
    j["name"] = o.spec.name;
    j["kind"] = o.spec.dense() ? "dense" : "sparse";
    j["rows"] = o.rows;
    j["width"] = o.spec.width;
    if (o.spec.dense()) j["dense_size"] = o.spec.dense_size;
    j["weights"] = o.spec.name + ".npy";
    j["ids"] = o.spec.name + ".ids.npy";
    j["fields"] = o.spec.name + ".fields.npy";
    j["columns"] = Columns(m.model, dim, o.spec);
    nlohmann::ordered_json by_field = nlohmann::ordered_json::object();
    for (const auto& [field, n] : o.rows_by_field) by_field[FieldName(field)] = n;
    j["rows_by_field"] = by_field;
    tables.push_back(std::move(j));
  }

  nlohmann::ordered_json doc;
  doc["format"] = "recsys-ps export 1";
  doc["model"] = m.model;
  doc["epoch"] = m.epoch;
  doc["checkpoint"] = dir;
  doc["dim"] = dim;
  nlohmann::ordered_json fields = nlohmann::ordered_json::object();
  for (std::uint8_t f : {kFieldUser, kFieldItem, kFieldAge, kFieldGender, kFieldOccupation, kFieldGenre, kFieldDense}) {
    fields[std::to_string(f)] = FieldName(f);
  }
  doc["fields"] = fields;
  doc["row_order"] = "sparse tables: checkpoint order (unsorted; look rows up by (field, id)); dense blocks: row r is "
                     "floats [r*width, (r+1)*width) of the flat block, the first dense_size count";
  if (m.model == "mf") {
    doc["score"] = "w0[0,0] + emb[u,dim] + emb[i,dim] + dot(emb[u,:dim], emb[i,:dim]), u and i the rows of "
                   "(field 0, user id) and (field 1, item id)";
  }
  doc["tables"] = tables;
  WriteFileAtomically(out_dir + "/tables.json", doc.dump(2) + "\n");
  return summary;
}

}  // namespace recsys
