// Fuzzes the checkpoint loader (ps/checkpoint.h) through its public reader
// API, as --resume, --init-from, --verify-checkpoint, recsys_export and
// recsys_recommend use it: ResolveCheckpoint, ReadManifest, VerifyCheckpoint
// and ReadShardFile. A checkpoint is untrusted input: any bytes must load or
// throw InputError; a crash, a hang, a sanitizer report, another exception,
// a path outside the checkpoint folder or a broken promise is a finding.
//
// Input: byte 0 holds flags, the rest is up to four parts separated by a line
// "%%" (as in the reader targets): the MANIFEST, shard-0.bin, shard-1.bin
// and LATEST. They are written to SCRATCH/ckpt-1/ and SCRATCH/LATEST.
//   bit 0: append the manifest's correct checksum line, so the fuzzer gets
//          past the checksum to the parser (a 64-bit checksum it cannot guess)
//   bit 1: before that, append one "shard" line per shard file with its true
//          size, checksum and row count, so VerifyCheckpoint gets past its
//          size and checksum checks to the structure and table checks
//   bit 2: write LATEST and resolve SCRATCH (else resolve SCRATCH/ckpt-1)
//
// Seeds: with RECSYS_FUZZ_SEEDS=DIR and RECSYS_FUZZ_CHECKPOINT=CKPT (a
// checkpoint folder written by a real job, see launch/fuzz.sh), the target
// packs CKPT into DIR in the three shapes above and exits.
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/keys.h"
#include "ps/checkpoint.h"

namespace {

using namespace recsys;

constexpr std::string_view kSeparator = "\n%%\n";
const char* const kShardNames[] = {"shard-0.bin", "shard-1.bin"};

// A broken promise of the loader: report it as a crash, with what broke.
void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: checkpoint loader contract broken: %s\n", what);
  std::abort();
}

struct Scratch {
  std::string top;   // holds LATEST
  std::string ckpt;  // top/ckpt-1: MANIFEST and the shard files
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/recsys_fuzz_ckpt.XXXXXX";
    Require(::mkdtemp(pattern.data()) != nullptr, "cannot create the scratch folder");
    top = pattern;
    ckpt = top + "/ckpt-1";
    Require(::mkdir(ckpt.c_str(), 0700) == 0, "cannot create the scratch checkpoint folder");
  }
  ~Scratch() {
    for (const char* name : {"MANIFEST", kShardNames[0], kShardNames[1]}) std::remove((ckpt + "/" + name).c_str());
    std::remove((top + "/LATEST").c_str());
    ::rmdir(ckpt.c_str());
    ::rmdir(top.c_str());
  }
};

Scratch& TheScratch() {
  static Scratch scratch;
  return scratch;
}

void WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  Require(static_cast<bool>(out), "cannot write a scratch file");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

std::uint64_t ChecksumOf(std::string_view bytes) {
  Checksum64 sum;
  sum.Update(bytes.data(), bytes.size());
  return sum.Value();
}

// What ReadShardFile promises its sink: a row of `stride` floats, at least
// the table's width, and dense keys inside their block. Every float is read,
// so a row pointing outside its buffer is an ASan report.
void CheckRow(const TableSpec& spec, int stride, Key key, const Real* values) {
  Require(spec.width > 0 && stride >= spec.width, "row stride below the table width");
  if (spec.dense()) {
    Require(FieldOf(key) == kFieldDense && ValueOf(key) < static_cast<std::uint64_t>(spec.dense_rows()),
            "dense key outside its block");
  }
  volatile Real sink = 0;
  for (int i = 0; i < stride; ++i) sink = sink + values[i];
}

// Reads one shard file the way the servers and recsys_export do; returns its
// row count (0 if refused).
std::uint64_t ReadShard(const std::string& path) {
  try {
    std::vector<TableSpec> tables;
    const ShardFileInfo info = ReadShardFile(path, CheckRow, &tables);
    Require(info.size == ReadFile(path).size(), "reported size differs from the file's");
    for (std::size_t t = 0; t < tables.size(); ++t) Require(tables[t].id == t, "table ids out of order");
    return info.rows;
  } catch (const InputError&) {
    return 0;
  }
}

std::vector<std::string_view> SplitParts(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < 4) {
    const std::size_t at = rest.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(rest.substr(0, at + 1));  // keep the line's newline
    rest.remove_prefix(at + kSeparator.size());
  }
  parts.push_back(rest);
  parts.resize(4);
  return parts;
}

// ---- seeds from a real checkpoint ----

std::string Pack(std::uint8_t flags, const std::string& manifest, const std::string& shard0, const std::string& shard1,
                 const std::string& latest) {
  std::string out(1, static_cast<char>(flags));
  out += manifest;
  for (const std::string* part : {&shard0, &shard1, &latest}) {
    if (out.back() != '\n') out += '\n';  // the separator is a whole line
    out += "%%\n";
    out += *part;
  }
  return out;
}

// Writes DIR/real (the checkpoint as is), DIR/body (manifest without its
// checksum line: flag 0) and DIR/fixed (without shard and checksum lines:
// flags 0 and 1), from checkpoint folder `ckpt` with shard-0 and shard-1.
void WriteSeeds(const std::string& dir, const std::string& ckpt) {
  const std::string manifest = ReadFile(ckpt + "/MANIFEST");
  Require(!manifest.empty(), "RECSYS_FUZZ_CHECKPOINT has no MANIFEST");
  std::string body, bare;
  std::istringstream lines(manifest);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("checksum ", 0) == 0) continue;
    body += line + "\n";
    if (line.rfind("shard ", 0) != 0) bare += line + "\n";
  }
  const std::string shard0 = ReadFile(ckpt + "/" + kShardNames[0]);
  const std::string shard1 = ReadFile(ckpt + "/" + kShardNames[1]);
  WriteFile(dir + "/real", Pack(4, manifest, shard0, shard1, "ckpt-1\n"));
  WriteFile(dir + "/body", Pack(1, body, shard0, shard1, ""));
  WriteFile(dir + "/fixed", Pack(3, bare, shard0, shard1, ""));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* seeds = std::getenv("RECSYS_FUZZ_SEEDS");
  const char* ckpt = std::getenv("RECSYS_FUZZ_CHECKPOINT");
  if (seeds == nullptr) return 0;
  Require(ckpt != nullptr, "RECSYS_FUZZ_SEEDS needs RECSYS_FUZZ_CHECKPOINT (a checkpoint folder)");
  WriteSeeds(seeds, ckpt);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  const auto parts = SplitParts(data + 1, size - 1);
  const Scratch& scratch = TheScratch();

  std::uint64_t rows[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    const std::string path = scratch.ckpt + "/" + kShardNames[i];
    WriteFile(path, parts[1 + i]);
    rows[i] = ReadShard(path);
  }
  std::string manifest(parts[0]);
  if ((flags & 3) != 0 && !manifest.empty() && manifest.back() != '\n') manifest += '\n';
  if (flags & 2) {
    for (int i = 0; i < 2; ++i) {
      manifest += std::string("shard ") + kShardNames[i] + " " + std::to_string(parts[1 + i].size()) + " " +
                  Hex(ChecksumOf(parts[1 + i])) + " " + std::to_string(rows[i]) + "\n";
    }
  }
  if (flags & 1) manifest += "checksum " + Hex(ChecksumOf(manifest)) + "\n";
  WriteFile(scratch.ckpt + "/MANIFEST", manifest);
  if (flags & 4) {
    WriteFile(scratch.top + "/LATEST", parts[3]);
  } else {
    std::remove((scratch.top + "/LATEST").c_str());
  }

  try {
    (void)ReadManifest(scratch.ckpt);
  } catch (const InputError&) {
  }
  try {
    const std::string dir = ResolveCheckpoint((flags & 4) ? scratch.top : scratch.ckpt);
    // Whatever LATEST says, the folder resolved is the one we wrote (the
    // only ckpt-* there): a name reaching elsewhere is refused.
    Require(dir == scratch.ckpt || dir == scratch.top + "/ckpt-1", "resolved a folder outside the checkpoint dir");
    const Manifest m = VerifyCheckpoint(dir);
    Require(!m.shards.empty() && !m.tables.empty(), "verified a manifest without shards or tables");
    for (const ShardFileInfo& s : m.shards) {
      Require(s.name.find('/') == std::string::npos && s.name != "." && s.name != "..",
              "verified a shard name that is not a plain file name");
      // A verified shard reads again with the manifest's checksum and rows.
      const ShardFileInfo again = ReadShardFile(dir + "/" + s.name, CheckRow);
      Require(again.checksum == s.checksum && again.rows == s.rows, "a verified shard reads differently");
    }
  } catch (const InputError&) {
  }
  return 0;
}
