#include "ps/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "common/error.h"
#include "common/hash.h"
#include "common/keys.h"
#include "ps/admission.h"
#include "ps/server_shard.h"

namespace recsys {
namespace {

namespace fs = std::filesystem;

constexpr char kShardMagic[8] = {'R', 'P', 'S', 'S', 'H', 'A', 'R', 'D'};
constexpr char kShardEnd[8] = {'R', 'P', 'S', 'E', 'N', 'D', '!', '!'};
constexpr char kManifestHead[] = "recsys-ps checkpoint";

// Bounds on what a checkpoint may declare, checked before anything is
// allocated from it. Generous next to any real model.
constexpr std::uint32_t kMaxTables = 1 << 16;
constexpr std::uint32_t kMaxNameBytes = 1024;
constexpr std::int32_t kMaxWidth = 1 << 20;
constexpr std::int32_t kMaxStateFactor = 4;  // optimizer state <= 4 x width + 16 floats
constexpr std::size_t kMaxManifestBytes = 64 << 20;
constexpr std::size_t kMaxShards = 1 << 16;
constexpr std::size_t kMaxCutoffs = 64;
// Shard files, version 2: table flags, and the bound on epochs (as the
// manifest's).
constexpr std::uint8_t kFlagEpochs = 1;
constexpr std::uint32_t kMaxEpoch = 1u << 30;

std::string Errno() { return std::strerror(errno); }

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

void FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: some filesystems do not allow it
  ::fsync(fd);
  ::close(fd);
}

std::string DirOf(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

// Writes through a buffer, checksumming as it goes.
class Writer {
 public:
  Writer(const std::string& path) : path_(path), tmp_(path + ".tmp") {
    file_.reset(std::fopen(tmp_.c_str(), "wb"));
    if (!file_) ThrowInputError(tmp_, 0, Concat("cannot open for writing: ", Errno()));
    buffer_.reserve(kBuffer);
  }
  void Put(const void* data, std::size_t n) {
    checksum_.Update(data, n);
    size_ += n;
    const char* p = static_cast<const char*>(data);
    if (buffer_.size() + n > kBuffer) Flush();
    if (n > kBuffer) {
      Write(p, n);
    } else {
      buffer_.insert(buffer_.end(), p, p + n);
    }
  }
  template <typename T>
  void PutValue(const T& v) {
    Put(&v, sizeof(T));
  }
  // Flushes, fsyncs, renames into place and fsyncs the folder.
  ShardFileInfo Commit() {
    Flush();
    if (std::fflush(file_.get()) != 0 || ::fsync(fileno(file_.get())) != 0) {
      ThrowInputError(tmp_, 0, Concat("write failed: ", Errno()));
    }
    if (std::fclose(file_.release()) != 0) ThrowInputError(tmp_, 0, Concat("write failed: ", Errno()));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      ThrowInputError(path_, 0, Concat("cannot rename ", tmp_, " into place: ", Errno()));
    }
    FsyncDir(DirOf(path_));
    ShardFileInfo info;
    info.name = fs::path(path_).filename().string();
    info.size = size_;
    info.checksum = checksum_.Value();
    return info;
  }

 private:
  static constexpr std::size_t kBuffer = 1 << 20;
  void Flush() {
    Write(buffer_.data(), buffer_.size());
    buffer_.clear();
  }
  void Write(const char* p, std::size_t n) {
    if (n > 0 && std::fwrite(p, 1, n, file_.get()) != n) ThrowInputError(tmp_, 0, Concat("write failed: ", Errno()));
  }

  std::string path_, tmp_;
  File file_;
  std::vector<char> buffer_;
  Checksum64 checksum_;
  std::uint64_t size_ = 0;
};

// Reads a file sequentially, checksumming as it goes; knows how many bytes
// are left, so counts can be bounded before allocation.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (!file_) ThrowInputError(path, 0, Concat("cannot open: ", Errno()));
    struct stat st {};
    if (::fstat(fileno(file_.get()), &st) != 0 || !S_ISREG(st.st_mode)) {
      ThrowInputError(path, 0, "not a regular file");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  std::uint64_t left() const { return size_ - offset_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }

  void Get(void* out, std::size_t n, const char* what) {
    if (n > left()) {
      ThrowInputError(path_, 0, Concat("truncated: ", what, " needs ", n, " bytes at offset ", offset_, ", but only ",
                                       left(), " remain"));
    }
    if (n > 0 && std::fread(out, 1, n, file_.get()) != n) {
      ThrowInputError(path_, 0, Concat("read failed at offset ", offset_, ": ", Errno()));
    }
    checksum_.Update(out, n);
    offset_ += n;
  }
  template <typename T>
  T GetValue(const char* what) {
    T v{};
    Get(&v, sizeof(T), what);
    return v;
  }
  [[noreturn]] void Fail(const std::string& message) const {
    ThrowInputError(path_, 0, Concat(message, " (at offset ", offset_, ")"));
  }
  std::uint64_t checksum() const { return checksum_.Value(); }

 private:
  std::string path_;
  File file_;
  std::uint64_t size_ = 0;
  std::uint64_t offset_ = 0;
  Checksum64 checksum_;
};

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

// Exact text of a double (hex float), so a resumed run reports the same bits.
std::string ExactDouble(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%a", v);
  return buf;
}

// A file name the manifest may list: a plain name inside the checkpoint
// folder, never a path.
bool IsPlainFileName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  if (name.find("..") != std::string::npos) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// ---- Manifest parsing: one line at a time, every field checked. ----
class LineParser {
 public:
  LineParser(const std::string& path, int line, const std::string& text) : path_(path), line_(line), in_(text) {}
  std::string Word(const char* what) {
    std::string w;
    if (!(in_ >> w)) Fail(Concat("expected ", what));
    return w;
  }
  std::uint64_t U64(const char* what, std::uint64_t max) {
    const std::string w = Word(what);
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(w.c_str(), &end, 10);
    if (w.empty() || *end != '\0' || errno != 0 || w[0] == '-' || v > max) {
      Fail(Concat("expected ", what, " (an integer in [0, ", max, "]), got '", w, "'"));
    }
    return v;
  }
  std::uint64_t Hex64(const char* what) {
    const std::string w = Word(what);
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(w.c_str(), &end, 16);
    if (w.empty() || w.size() > 16 || *end != '\0' || errno != 0 || w[0] == '-') {
      Fail(Concat("expected ", what, " (16 hex digits), got '", w, "'"));
    }
    return v;
  }
  double Double(const char* what) {
    const std::string w = Word(what);
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(w.c_str(), &end);
    if (w.empty() || *end != '\0' || !std::isfinite(v)) Fail(Concat("expected ", what, " (a number), got '", w, "'"));
    return v;
  }
  // The rest of the line after one separating space (may be empty).
  std::string Rest() {
    std::string rest;
    std::getline(in_, rest);
    if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
    return rest;
  }
  void End() {
    std::string extra;
    if (in_ >> extra) Fail(Concat("unexpected '", extra, "' at the end of the line"));
  }
  [[noreturn]] void Fail(const std::string& message) const { ThrowInputError(path_, line_, message); }

 private:
  const std::string& path_;
  int line_;
  std::istringstream in_;
};

void ParseSums(LineParser& p, RankingSums* sums) {
  sums->users = static_cast<std::int64_t>(p.U64("users", std::uint64_t{1} << 62));
  const std::size_t n = p.U64("number of cut-offs", kMaxCutoffs);
  sums->ks.assign(n, 0);
  sums->hits.assign(n, 0.0);
  sums->ndcg.assign(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    sums->ks[i] = static_cast<int>(p.U64("cut-off K", 1 << 30));
    sums->hits[i] = p.Double("hits");
    sums->ndcg[i] = p.Double("ndcg sum");
  }
}

std::string EncodeSums(const RankingSums& s) {
  std::string out = Concat(s.users, " ", s.ks.size());
  for (std::size_t i = 0; i < s.ks.size(); ++i) {
    out += Concat(" ", s.ks[i], " ", ExactDouble(s.hits[i]), " ", ExactDouble(s.ndcg[i]));
  }
  return out;
}

bool SameSpec(const TableSpec& a, const TableSpec& b) {
  return a.id == b.id && a.name == b.name && a.width == b.width && a.dense_size == b.dense_size &&
         a.init == b.init;
}

std::string DescribeSpec(const TableSpec& s) {
  return Concat("table ", s.id, " '", s.name, "' width ", s.width,
                s.dense() ? Concat(" dense size ", s.dense_size) : std::string(" sparse"));
}

}  // namespace

// ---- Checksum64 ----

void Checksum64::MixWord(std::uint64_t word) { state_ = Mix64(state_ ^ word); }

void Checksum64::Update(const void* data, std::size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  length_ += n;
  // Complete a pending partial word first.
  while (n > 0 && pending_bytes_ > 0) {
    pending_ |= static_cast<std::uint64_t>(*p++) << (8 * pending_bytes_);
    --n;
    if (++pending_bytes_ == 8) {
      MixWord(pending_);
      pending_ = 0;
      pending_bytes_ = 0;
    }
  }
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t word = 0;
    for (int i = 0; i < 8; ++i) word |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    MixWord(word);
  }
  for (; n > 0; --n) {
    pending_ |= static_cast<std::uint64_t>(*p++) << (8 * pending_bytes_);
    ++pending_bytes_;
  }
}

std::uint64_t Checksum64::Value() const {
  return Mix64(Mix64(state_ ^ pending_) ^ (length_ * 0x9e3779b97f4a7c15ULL));
}

// ---- Shard files ----

std::string CheckpointName(int epoch) { return Concat("ckpt-", epoch); }

ShardFileInfo WriteShardFile(const std::string& dir, int server, const ServerShard& shard) {
  Writer out(Concat(dir, "/shard-", server, ".bin"));
  out.Put(kShardMagic, sizeof(kShardMagic));
  out.PutValue<std::uint32_t>(kShardVersion);
  out.PutValue<std::uint32_t>(static_cast<std::uint32_t>(shard.num_tables()));
  std::uint64_t total = 0;
  for (std::size_t t = 0; t < shard.num_tables(); ++t) {
    const EmbeddingTable& table = shard.table(static_cast<TableId>(t));
    const TableSpec& spec = table.spec();
    out.PutValue<std::uint32_t>(spec.id);
    out.PutValue<std::uint32_t>(static_cast<std::uint32_t>(spec.name.size()));
    out.Put(spec.name.data(), spec.name.size());
    out.PutValue<std::int32_t>(spec.width);
    out.PutValue<std::uint8_t>(static_cast<std::uint8_t>(spec.init));
    out.PutValue<float>(spec.init_scale);
    out.PutValue<std::int64_t>(spec.dense_size);
    out.PutValue<std::int32_t>(table.stride());
    out.PutValue<std::uint64_t>(table.size());
    const bool epochs = table.tracking().epochs;
    out.PutValue<std::uint8_t>(epochs ? kFlagEpochs : 0);
    const std::size_t width = static_cast<std::size_t>(table.width());
    const std::size_t state = static_cast<std::size_t>(table.stride()) - width;
    table.ForEachWithEpoch([&](Key key, const Real* row, const Real* row_state, std::uint32_t epoch) {
      out.PutValue<std::uint64_t>(key);
      out.Put(row, width * sizeof(Real));
      if (state > 0) out.Put(row_state, state * sizeof(Real));
      if (epochs) out.PutValue<std::uint32_t>(epoch);
    });
    total += table.size();
    const AdmissionCounter* pending = shard.admission(static_cast<TableId>(t));
    out.PutValue<std::uint64_t>(pending ? pending->size() : 0);
    if (pending) {
      pending->ForEach([&](Key key, int count, std::uint32_t epoch) {
        out.PutValue<std::uint64_t>(key);
        out.PutValue<std::uint32_t>(static_cast<std::uint32_t>(count));
        out.PutValue<std::uint32_t>(epoch);
      });
    }
  }
  out.Put(kShardEnd, sizeof(kShardEnd));
  ShardFileInfo info = out.Commit();
  info.rows = total;
  return info;
}

ShardFileInfo ReadShardFile(const std::string& path, const RowSink& sink, std::vector<TableSpec>* tables) {
  TrackedRowSink rows;
  if (sink) {
    rows = [&sink](const TableSpec& spec, int stride, Key key, const Real* values, std::uint32_t, bool) {
      sink(spec, stride, key, values);
    };
  }
  return ReadShardFile(path, rows, PendingSink(), tables);
}

ShardFileInfo ReadShardFile(const std::string& path, const TrackedRowSink& sink, const PendingSink& pending_sink,
                            std::vector<TableSpec>* tables) {
  Reader in(path);
  char magic[8];
  in.Get(magic, sizeof(magic), "the file header");
  if (std::memcmp(magic, kShardMagic, sizeof(magic)) != 0) in.Fail("not a recsys-ps shard file (wrong magic)");
  const auto version = in.GetValue<std::uint32_t>("the format version");
  if (version != 1 && version != kShardVersion) {
    in.Fail(Concat("shard format version ", version, "; this build reads versions 1 and ", kShardVersion));
  }
  const auto num_tables = in.GetValue<std::uint32_t>("the table count");
  if (num_tables > kMaxTables) in.Fail(Concat("declares ", num_tables, " tables (at most ", kMaxTables, ")"));
  std::vector<TableSpec> specs;
  std::vector<Real> row;
  std::uint64_t total = 0;
  for (std::uint32_t t = 0; t < num_tables; ++t) {
    TableSpec spec;
    spec.id = in.GetValue<std::uint32_t>("a table id");
    if (spec.id != t) in.Fail(Concat("table ", t, " has id ", spec.id));
    const auto name_len = in.GetValue<std::uint32_t>("a table name length");
    if (name_len > kMaxNameBytes || name_len > in.left()) {
      in.Fail(Concat("table ", t, " declares a name of ", name_len, " bytes"));
    }
    spec.name.resize(name_len);
    in.Get(spec.name.data(), name_len, "a table name");
    spec.width = in.GetValue<std::int32_t>("a table width");
    if (spec.width <= 0 || spec.width > kMaxWidth) in.Fail(Concat("table ", t, " has width ", spec.width));
    const auto init = in.GetValue<std::uint8_t>("an init kind");
    if (init > static_cast<std::uint8_t>(InitKind::kUniform)) in.Fail(Concat("table ", t, " has init kind ", +init));
    spec.init = static_cast<InitKind>(init);
    spec.init_scale = in.GetValue<float>("an init scale");
    spec.dense_size = in.GetValue<std::int64_t>("a dense size");
    if (spec.dense_size < 0 || spec.dense_size > (std::int64_t{1} << 40)) {
      in.Fail(Concat("table ", t, " has dense size ", spec.dense_size));
    }
    const auto stride = in.GetValue<std::int32_t>("a row stride");
    if (stride < spec.width || stride > kMaxStateFactor * spec.width + spec.width + 16) {
      in.Fail(Concat("table ", t, " has row stride ", stride, " for width ", spec.width));
    }
    const auto rows = in.GetValue<std::uint64_t>("a row count");
    std::uint8_t flags = 0;
    if (version >= 2) {
      // Bound `rows` by the file only once the flags say how long a row is;
      // a bad count still fails before anything is allocated from it.
      if (rows > in.left()) {
        in.Fail(Concat("table ", t, " '", spec.name, "' declares ", rows, " rows, more than the ", in.left(),
                       " bytes left in the file"));
      }
      flags = in.GetValue<std::uint8_t>("the table flags");
      if ((flags & ~kFlagEpochs) != 0) in.Fail(Concat("table ", t, " has unknown flags ", +flags));
      if (spec.dense() && flags != 0) in.Fail(Concat("dense block '", spec.name, "' has flags ", +flags));
    }
    const bool has_epochs = (flags & kFlagEpochs) != 0;
    const std::uint64_t row_bytes =
        sizeof(Key) + static_cast<std::uint64_t>(stride) * sizeof(Real) + (has_epochs ? sizeof(std::uint32_t) : 0);
    if (rows > in.left() / row_bytes) {
      in.Fail(Concat("table ", t, " '", spec.name, "' declares ", rows, " rows of ", row_bytes,
                     " bytes, more than the ", in.left(), " bytes left in the file"));
    }
    if (spec.dense() && rows > static_cast<std::uint64_t>(spec.dense_rows())) {
      in.Fail(Concat("dense block '", spec.name, "' declares ", rows, " rows, more than its ", spec.dense_rows()));
    }
    row.resize(static_cast<std::size_t>(stride));
    for (std::uint64_t r = 0; r < rows; ++r) {
      const Key key = in.GetValue<std::uint64_t>("a row key");
      if (spec.dense() && (FieldOf(key) != kFieldDense || ValueOf(key) >= static_cast<std::uint64_t>(spec.dense_rows()))) {
        in.Fail(Concat("key ", key, " is not a row of dense block '", spec.name, "'"));
      }
      in.Get(row.data(), row.size() * sizeof(Real), "a row");
      std::uint32_t epoch = 0;
      if (has_epochs) {
        epoch = in.GetValue<std::uint32_t>("a row's epoch");
        if (epoch > kMaxEpoch) in.Fail(Concat("row ", key, " of table '", spec.name, "' has epoch ", epoch));
      }
      if (sink) sink(spec, stride, key, row.data(), epoch, has_epochs);
    }
    total += rows;
    if (version >= 2) {
      const auto pending = in.GetValue<std::uint64_t>("a pending count");
      constexpr std::uint64_t kPendingBytes = sizeof(Key) + 2 * sizeof(std::uint32_t);
      if (pending > in.left() / kPendingBytes) {
        in.Fail(Concat("table ", t, " '", spec.name, "' declares ", pending, " pending keys of ", kPendingBytes,
                       " bytes, more than the ", in.left(), " bytes left in the file"));
      }
      if (spec.dense() && pending != 0) in.Fail(Concat("dense block '", spec.name, "' declares pending keys"));
      for (std::uint64_t p = 0; p < pending; ++p) {
        const Key key = in.GetValue<std::uint64_t>("a pending key");
        const auto count = in.GetValue<std::uint32_t>("a pending count");
        const auto epoch = in.GetValue<std::uint32_t>("a pending epoch");
        if (count < 1 || count > 255) {
          in.Fail(Concat("pending key ", key, " of table '", spec.name, "' has count ", count, " (expected 1 to 255)"));
        }
        if (epoch > kMaxEpoch) in.Fail(Concat("pending key ", key, " of table '", spec.name, "' has epoch ", epoch));
        if (pending_sink) pending_sink(spec, key, static_cast<int>(count), epoch);
      }
    }
    specs.push_back(std::move(spec));
  }
  char end[8];
  in.Get(end, sizeof(end), "the end marker");
  if (std::memcmp(end, kShardEnd, sizeof(end)) != 0) in.Fail("bad end marker");
  if (in.left() != 0) in.Fail(Concat(in.left(), " unexpected bytes after the end marker"));
  ShardFileInfo info;
  info.name = fs::path(path).filename().string();
  info.size = in.size();
  info.checksum = in.checksum();
  info.rows = total;
  if (tables) *tables = std::move(specs);
  return info;
}

// ---- Files written atomically ----

void WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    File f(std::fopen(tmp.c_str(), "wb"));
    if (!f) ThrowInputError(tmp, 0, Concat("cannot open for writing: ", Errno()));
    if (std::fwrite(contents.data(), 1, contents.size(), f.get()) != contents.size() || std::fflush(f.get()) != 0 ||
        ::fsync(fileno(f.get())) != 0) {
      ThrowInputError(tmp, 0, Concat("write failed: ", Errno()));
    }
    if (std::fclose(f.release()) != 0) ThrowInputError(tmp, 0, Concat("write failed: ", Errno()));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ThrowInputError(path, 0, Concat("cannot rename ", tmp, " into place: ", Errno()));
  }
  FsyncDir(DirOf(path));
}

void WriteLatest(const std::string& dir, const std::string& name) {
  WriteFileAtomically(dir + "/LATEST", name + "\n");
}

// ---- Manifest ----

std::string EncodeManifest(const Manifest& m) {
  std::string out = Concat(kManifestHead, "\n");
  out += Concat("version ", m.version, "\n");
  out += Concat("epoch ", m.epoch, "\n");
  out += Concat("model ", m.model, "\n");
  out += Concat("servers ", m.servers, "\n");
  out += Concat("workers ", m.workers, "\n");
  for (const auto& [name, value] : m.settings) out += Concat("setting ", name, " ", value, "\n");
  for (const TableSpec& t : m.tables) {
    out += Concat("table ", t.id, " ", t.width, " ", static_cast<int>(t.init), " ", ExactDouble(t.init_scale), " ",
                  t.dense_size, " ", t.name, "\n");
  }
  for (const ShardFileInfo& s : m.shards) {
    out += Concat("shard ", s.name, " ", s.size, " ", Hex(s.checksum), " ", s.rows, "\n");
  }
  for (const EpochSummary& r : m.results) {
    out += Concat("result ", r.epoch, " ", ExactDouble(r.loss), " ", r.examples, " ", ExactDouble(r.train_seconds),
                  " ", ExactDouble(r.eval_seconds), " ", ExactDouble(r.samples_per_second), " ",
                  EncodeSums(r.metrics), " ", EncodeSums(r.validation), "\n");
  }
  Checksum64 sum;
  sum.Update(out.data(), out.size());
  out += Concat("checksum ", Hex(sum.Value()), "\n");
  return out;
}

void WriteManifest(const std::string& dir, const Manifest& manifest) {
  WriteFileAtomically(dir + "/MANIFEST", EncodeManifest(manifest));
}

Manifest ReadManifest(const std::string& dir) {
  const std::string path = dir + "/MANIFEST";
  std::string text;
  {
    Reader in(path);
    if (in.size() > kMaxManifestBytes) ThrowInputError(path, 0, Concat("is ", in.size(), " bytes; too large for a manifest"));
    text.resize(static_cast<std::size_t>(in.size()));
    in.Get(text.data(), text.size(), "the manifest");
  }
  // The last line is the checksum of everything before it: a truncated or
  // edited manifest is refused before any field is trusted.
  const std::size_t last = text.rfind("\nchecksum ");
  if (text.empty() || text.back() != '\n' || last == std::string::npos) {
    ThrowInputError(path, 0, "incomplete: no checksum line at the end (truncated?)");
  }
  {
    LineParser p(path, 0, text.substr(last + 1));
    p.Word("checksum");
    const std::uint64_t expected = p.Hex64("the manifest checksum");
    p.End();
    Checksum64 sum;
    sum.Update(text.data(), last + 1);
    if (sum.Value() != expected) {
      ThrowInputError(path, 0, Concat("corrupted: checksum ", Hex(sum.Value()), ", the manifest says ", Hex(expected)));
    }
  }
  Manifest m;
  std::istringstream lines(text.substr(0, last + 1));
  std::string line;
  int n = 0;
  bool seen_version = false;
  while (std::getline(lines, line)) {
    ++n;
    if (n == 1) {
      if (line != kManifestHead) ThrowInputError(path, 1, Concat("not a recsys-ps manifest (expected '", kManifestHead, "')"));
      continue;
    }
    LineParser p(path, n, line);
    const std::string kind = p.Word("a field name");
    if (kind == "version") {
      m.version = static_cast<std::uint32_t>(p.U64("the format version", 1 << 30));
      if (m.version != kCheckpointVersion) {
        p.Fail(Concat("checkpoint format version ", m.version, "; this build reads version ", kCheckpointVersion));
      }
      seen_version = true;
    } else if (kind == "epoch") {
      m.epoch = static_cast<int>(p.U64("the epoch", 1 << 30));
    } else if (kind == "model") {
      m.model = p.Word("the model name");
    } else if (kind == "servers") {
      m.servers = static_cast<int>(p.U64("the number of servers", kMaxShards));
    } else if (kind == "workers") {
      m.workers = static_cast<int>(p.U64("the number of workers", 1 << 30));
    } else if (kind == "setting") {
      std::string name = p.Word("a setting name");
      m.settings.emplace_back(std::move(name), p.Rest());
    } else if (kind == "table") {
      if (m.tables.size() >= kMaxTables) p.Fail("too many tables");
      TableSpec t;
      t.id = static_cast<TableId>(p.U64("the table id", kMaxTables));
      if (t.id != m.tables.size()) p.Fail(Concat("table ", m.tables.size(), " has id ", t.id));
      t.width = static_cast<std::int32_t>(p.U64("the width", kMaxWidth));
      if (t.width <= 0) p.Fail("width must be positive");
      t.init = static_cast<InitKind>(p.U64("the init kind", static_cast<int>(InitKind::kUniform)));
      t.init_scale = static_cast<float>(p.Double("the init scale"));
      t.dense_size = static_cast<std::int64_t>(p.U64("the dense size", std::uint64_t{1} << 40));
      t.name = p.Rest();
      if (t.name.empty() || t.name.size() > kMaxNameBytes) p.Fail("bad table name");
      m.tables.push_back(std::move(t));
    } else if (kind == "shard") {
      if (m.shards.size() >= kMaxShards) p.Fail("too many shard files");
      ShardFileInfo s;
      s.name = p.Word("the shard file name");
      if (!IsPlainFileName(s.name)) {
        p.Fail(Concat("shard file name '", s.name, "' is not a plain file name inside the checkpoint folder"));
      }
      s.size = p.U64("the file size", ~std::uint64_t{0});
      s.checksum = p.Hex64("the checksum");
      s.rows = p.U64("the row count", ~std::uint64_t{0});
      p.End();
      m.shards.push_back(std::move(s));
    } else if (kind == "result") {
      if (m.results.size() >= (1u << 20)) p.Fail("too many results");
      EpochSummary r;
      r.epoch = static_cast<int>(p.U64("the epoch", 1 << 30));
      r.loss = p.Double("the loss");
      r.examples = p.U64("the example count", ~std::uint64_t{0});
      r.train_seconds = p.Double("the training time");
      r.eval_seconds = p.Double("the evaluation time");
      r.samples_per_second = p.Double("the throughput");
      ParseSums(p, &r.metrics);
      ParseSums(p, &r.validation);
      p.End();
      m.results.push_back(std::move(r));
    } else {
      p.Fail(Concat("unknown field '", kind, "'"));
    }
  }
  if (!seen_version) ThrowInputError(path, 0, "no version line");
  if (m.model.empty()) ThrowInputError(path, 0, "no model line");
  if (m.epoch <= 0) ThrowInputError(path, 0, "no epoch line");
  if (m.shards.empty()) ThrowInputError(path, 0, "lists no shard files");
  if (m.tables.empty()) ThrowInputError(path, 0, "lists no tables");
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (m.shards[i].name == m.shards[j].name) ThrowInputError(path, 0, Concat("lists ", m.shards[i].name, " twice"));
    }
  }
  return m;
}

std::string ResolveCheckpoint(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) ThrowInputError(path, 0, "checkpoint folder does not exist");
  if (fs::exists(path + "/MANIFEST", ec)) return path;
  const std::string latest = path + "/LATEST";
  std::string name;
  {
    File f(std::fopen(latest.c_str(), "rb"));
    if (!f) {
      ThrowInputError(path, 0, "holds no MANIFEST and no LATEST: not a checkpoint folder, or no checkpoint was completed");
    }
    char buf[128];
    const std::size_t n = std::fread(buf, 1, sizeof(buf), f.get());
    name.assign(buf, n);
  }
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  if (!IsPlainFileName(name) || name.rfind("ckpt-", 0) != 0) {
    ThrowInputError(latest, 1, Concat("expected the name of a ckpt-<epoch> folder, got '", name.substr(0, 64), "'"));
  }
  const std::string dir = path + "/" + name;
  if (!fs::exists(dir + "/MANIFEST", ec)) {
    ThrowInputError(dir, 0, "incomplete checkpoint: MANIFEST is missing (LATEST names this folder)");
  }
  return dir;
}

Manifest VerifyCheckpoint(const std::string& dir) {
  Manifest m = ReadManifest(dir);
  for (const ShardFileInfo& s : m.shards) {
    const std::string path = dir + "/" + s.name;
    std::error_code ec;
    if (!fs::exists(path, ec)) ThrowInputError(path, 0, "missing (listed in the checkpoint's MANIFEST)");
    const auto size = fs::file_size(path, ec);
    if (ec || size != s.size) {
      ThrowInputError(path, 0, Concat("is ", ec ? 0 : size, " bytes, the MANIFEST says ", s.size, " (truncated or replaced)"));
    }
    std::vector<TableSpec> tables;
    ShardFileInfo got;
    try {
      got = ReadShardFile(path, RowSink(), &tables);
    } catch (const InputError& e) {
      throw InputError(Concat(e.what(), " (checkpoint ", dir, " is corrupted)"));
    }
    if (got.checksum != s.checksum) {
      ThrowInputError(path, 0, Concat("corrupted: checksum ", Hex(got.checksum), ", the MANIFEST says ", Hex(s.checksum)));
    }
    if (got.rows != s.rows) ThrowInputError(path, 0, Concat("holds ", got.rows, " rows, the MANIFEST says ", s.rows));
    if (tables.size() != m.tables.size()) {
      ThrowInputError(path, 0, Concat("holds ", tables.size(), " tables, the MANIFEST says ", m.tables.size()));
    }
    for (std::size_t t = 0; t < tables.size(); ++t) {
      if (!SameSpec(tables[t], m.tables[t])) {
        ThrowInputError(path, 0, Concat(DescribeSpec(tables[t]), " differs from the MANIFEST's ", DescribeSpec(m.tables[t])));
      }
    }
  }
  return m;
}

std::vector<std::string> PruneCheckpoints(const std::string& dir, int keep, int current_epoch) {
  std::vector<std::pair<int, std::string>> older;  // (epoch, name), e < current
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ckpt-", 0) != 0 || !entry.is_directory(ec)) continue;
    const std::string digits = name.substr(5);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const int epoch = std::atoi(digits.c_str());
    if (epoch < current_epoch) older.emplace_back(epoch, name);
  }
  std::sort(older.rbegin(), older.rend());  // newest first
  std::vector<std::string> deleted;
  int kept = 1;  // the current checkpoint
  for (const auto& [epoch, name] : older) {
    const std::string path = dir + "/" + name;
    const bool complete = fs::exists(path + "/MANIFEST", ec);
    if (complete && kept < keep) {
      ++kept;
      continue;
    }
    // The manifest goes first: a half-deleted checkpoint is then incomplete,
    // never a complete one with missing shards.
    fs::remove(path + "/MANIFEST", ec);
    fs::remove_all(path, ec);
    deleted.push_back(name);
  }
  return deleted;
}

// ---- Settings that must match to resume ----

std::vector<std::pair<std::string, std::string>> ResumeSettings(const Config& c) {
  std::string layers, ks;
  for (int w : c.layers) layers += Concat(layers.empty() ? "" : ",", w);
  for (int k : c.topk) ks += Concat(ks.empty() ? "" : ",", k);
  return {
      {"--model", c.model},
      {"--loss", c.loss},
      {"--dim", Concat(c.dim)},
      {"--layers", layers.empty() ? "none" : layers},
      {"--dropout", ExactDouble(c.dropout)},
      {"--init-scale", ExactDouble(c.init_scale)},
      {"--optimizer", c.optimizer},
      {"--lr", ExactDouble(c.lr)},
      {"--dense-lr", ExactDouble(c.dense_lr != 0.0f ? c.dense_lr : c.lr)},
      // Adam's last state slot is a count (lazy) or a step (dense).
      {"--adam-mode", c.optimizer == "adam" ? c.adam_mode : "none"},
      {"--l2", ExactDouble(c.l2)},
      {"--neg-ratio", Concat(c.neg_ratio)},
      {"--batch-size", Concat(c.batch_size)},
      {"--seed", Concat(c.seed)},
      {"--format", c.format},
      {"--data", c.data},
      {"--no-side-features", c.side_features ? "off" : "on"},
      {"--users", Concat(c.users)},
      {"--items", Concat(c.items)},
      {"--interactions-per-user", Concat(c.interactions_per_user)},
      {"--validation", c.validation ? "on" : "off"},
      {"--eval-candidates", c.eval_candidates},
      {"--eval-full", c.eval_full ? "on" : "off"},
      {"--eval-negatives", Concat(c.eval_negatives)},
      {"--topk", ks},
  };
}

void CheckResumeSettings(const std::string& manifest_path, const Manifest& m, const Config& config) {
  if (m.model != config.model) {
    ThrowInputError(manifest_path, 0, Concat("the checkpoint is of model '", m.model, "', this run trains '", config.model, "'"));
  }
  std::string diffs;
  for (const auto& [name, value] : ResumeSettings(config)) {
    // Init-capture: a lambda may not capture a structured binding in C++17 (clang refuses).
    auto it = std::find_if(m.settings.begin(), m.settings.end(), [&key = name](const auto& s) { return s.first == key; });
    if (it == m.settings.end() && name == "--dense-lr") {
      // Checkpoints from before --dense-lr: the dense blocks stepped with --lr.
      it = std::find_if(m.settings.begin(), m.settings.end(), [](const auto& s) { return s.first == "--lr"; });
    }
    if (it == m.settings.end() && name == "--adam-mode") {
      // Checkpoints from before --adam-mode were of lazy Adam (or another optimizer).
      const std::string was = config.optimizer == "adam" ? "lazy" : "none";
      if (value != was) diffs += Concat("; ", name, " was '", was, "' (not recorded), this run has '", value, "'");
      continue;
    }
    if (it == m.settings.end()) {
      diffs += Concat("; ", name, " is not recorded");
    } else if (it->second != value) {
      diffs += Concat("; ", name, " was '", it->second, "', this run has '", value, "'");
    }
  }
  if (!diffs.empty()) {
    ThrowInputError(manifest_path, 0, Concat("the checkpoint was written with other settings", diffs,
                                             " (a resumed run must use the same ones)"));
  }
}

void CheckTables(const std::string& manifest_path, const Manifest& m, const std::vector<TableSpec>& tables) {
  if (tables.size() != m.tables.size()) {
    ThrowInputError(manifest_path, 0, Concat("the checkpoint holds ", m.tables.size(), " tables, this run's model has ",
                                             tables.size(), " (another model or other side features?)"));
  }
  for (std::size_t t = 0; t < tables.size(); ++t) {
    if (!SameSpec(tables[t], m.tables[t])) {
      ThrowInputError(manifest_path, 0, Concat("checkpoint ", DescribeSpec(m.tables[t]), ", this run's model has ",
                                               DescribeSpec(tables[t])));
    }
  }
}

}  // namespace recsys
