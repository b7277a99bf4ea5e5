// recsys_recommend: top-K items for given users from a saved model.
//
//   recsys_recommend --checkpoint CKPT --users 1,2,3 [--topk 10] [--out FILE]
//   mpirun -n 4 recsys_recommend --checkpoint CKPT --users-file users.txt --out recs.tsv
//
// Prints "user<TAB>item<TAB>score" lines, best first, users in the order
// given. On one process, or under mpirun: then every rank loads the model and
// scores a contiguous share of the users, and rank 0 writes all lines in the
// same order as one process would. Errors print one message and exit 2.
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <cxxopts.hpp>

#include "common/data/dataset.h"
#include "common/error.h"
#include "common/transport.h"
#include "ps/checkpoint.h"
#include "worker/recommend.h"

namespace {

constexpr int kExitInputError = 2;
constexpr int kExitInternalError = 3;
constexpr int kTagLines = 1;

struct Options {
  std::string checkpoint;
  std::vector<std::uint64_t> users;
  int topk = 10;
  std::string out;
  recsys::Exclude exclude = recsys::Exclude::kTrain;
  std::string data;
  bool help = false;
  std::string help_text;
};

// A user id as the data has it: an integer, or (a csv file's open
// vocabulary) any other text, which maps to its id as the reader maps it.
std::uint64_t ParseUser(const std::string& text, const std::string& where) {
  if (!text.empty() && text.find_first_not_of("0123456789") != std::string::npos && text[0] != '-') {
    return recsys::CsvStringId(text);
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno != 0) {
    throw recsys::InputError(recsys::Concat(where, ": expected a user id (a non-negative integer), got '", text, "'"));
  }
  return v;
}

Options Parse(int argc, char** argv) {
  cxxopts::Options options("recsys_recommend", "Top-K items for given users from a saved model (user<TAB>item<TAB>score lines, best first)");
  // clang-format off
  options.add_options()
    ("checkpoint", "A checkpoint: a ckpt-<epoch> folder, or a --checkpoint-dir (its LATEST)", cxxopts::value<std::string>()->default_value(""))
    ("users", "User ids, comma-separated (e.g. 1,2,3; csv string ids as in the file)", cxxopts::value<std::string>()->default_value(""))
    ("users-file", "A file of user ids, one per line ('#' comments and blank lines skipped)", cxxopts::value<std::string>()->default_value(""))
    ("topk", "Items per user", cxxopts::value<int>()->default_value("10"))
    ("out", "Write the lines to this file (atomically) instead of standard output", cxxopts::value<std::string>()->default_value(""))
    ("exclude", "Items never recommended: 'train' (the user's training items; held-out items stay candidates, as in evaluation) or 'all' (every item of the user in the data)", cxxopts::value<std::string>()->default_value("train"))
    ("data", "Read the data from here instead of the checkpoint's --data (moved since training)", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "Print this help");
  // clang-format on
  Options o;
  cxxopts::ParseResult r;
  try {
    r = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    throw recsys::InputError(recsys::Concat(e.what(), " (see --help)"));
  }
  if (r.count("help")) {
    o.help = true;
    o.help_text = options.help();
    return o;
  }
  if (!r.unmatched().empty()) {
    throw recsys::InputError(recsys::Concat("unexpected argument '", r.unmatched().front(), "' (see --help)"));
  }
  o.checkpoint = r["checkpoint"].as<std::string>();
  if (o.checkpoint.empty()) throw recsys::InputError("--checkpoint is required: the saved model to recommend from");
  o.topk = r["topk"].as<int>();
  if (o.topk <= 0) throw recsys::InputError(recsys::Concat("--topk must be positive, got ", o.topk));
  o.out = r["out"].as<std::string>();
  o.data = r["data"].as<std::string>();
  const std::string exclude = r["exclude"].as<std::string>();
  if (exclude == "all") {
    o.exclude = recsys::Exclude::kAll;
  } else if (exclude != "train") {
    throw recsys::InputError(recsys::Concat("--exclude: expected 'train' or 'all', got '", exclude, "'"));
  }
  const std::string list = r["users"].as<std::string>();
  for (std::size_t pos = 0; !list.empty() && pos <= list.size();) {
    const std::size_t comma = std::min(list.find(',', pos), list.size());
    o.users.push_back(ParseUser(list.substr(pos, comma - pos), "--users"));
    pos = comma + 1;
  }
  const std::string file = r["users-file"].as<std::string>();
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw recsys::InputError(recsys::Concat(file, ": cannot open (--users-file)"));
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      const std::size_t hash = line.find('#');
      if (hash != std::string::npos) line.erase(hash);
      const std::size_t b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
      if (b == std::string::npos) continue;
      o.users.push_back(ParseUser(line.substr(b, e - b + 1), recsys::Concat(file, ":", n)));
    }
  }
  if (o.users.empty()) throw recsys::InputError("no users given: use --users 1,2,3 or --users-file FILE");
  return o;
}

std::string Lines(recsys::Recommender& rec, const Options& o, std::size_t begin, std::size_t end) {
  std::string text;
  char buf[96];
  for (std::size_t i = begin; i < end; ++i) {
    for (const auto& r : rec.TopK(o.users[i], o.topk, o.exclude)) {
      std::snprintf(buf, sizeof(buf), "%llu\t%llu\t%.9g\n", static_cast<unsigned long long>(o.users[i]),
                    static_cast<unsigned long long>(r.item), static_cast<double>(r.score));
      text += buf;
    }
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<recsys::Transport> transport;
  try {
    transport = recsys::MakeMpiTransport(&argc, &argv);
  } catch (const recsys::InputError& e) {  // the environment (RECSYS_SHARED_AREA_MB)
    std::fprintf(stderr, "recsys_recommend: error: %s\n", e.what());
    return kExitInputError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recsys_recommend: cannot start MPI: %s\n", e.what());
    return kExitInternalError;
  }
  const int rank = transport->rank();
  const int size = transport->size();
  int code = 0;
  std::string message;
  try {
    const Options o = Parse(argc, argv);
    if (o.help) {
      if (rank == 0) std::printf("%s\n", o.help_text.c_str());
    } else {
      recsys::Recommender rec(o.checkpoint, o.data);
      rec.CheckUsers(o.users);  // every rank checks every user: one clear error, before any work
      const std::size_t n = o.users.size();
      const std::size_t begin = n * static_cast<std::size_t>(rank) / static_cast<std::size_t>(size);
      const std::size_t end = n * static_cast<std::size_t>(rank + 1) / static_cast<std::size_t>(size);
      std::string text = Lines(rec, o, begin, end);
      if (rank != 0) {
        transport->Send(0, kTagLines, recsys::Bytes(text.begin(), text.end()));
      } else {
        for (int r = 1; r < size; ++r) {
          const recsys::Message m = transport->Recv(r, kTagLines);
          text.append(m.data.begin(), m.data.end());
        }
        if (o.out.empty()) {
          std::fwrite(text.data(), 1, text.size(), stdout);
          std::fflush(stdout);
        } else {
          recsys::WriteFileAtomically(o.out, text);
          std::fprintf(stderr, "recsys_recommend: %zu users, top %d, from %s (epoch %d) -> %s\n", n, o.topk,
                       rec.checkpoint_dir().c_str(), rec.epoch(), o.out.c_str());
        }
      }
    }
  } catch (const recsys::InputError& e) {
    message = e.what();
    code = kExitInputError;
  } catch (const std::exception& e) {
    message = recsys::Concat("internal error: ", e.what());
    code = kExitInternalError;
  }
  if (code != 0) {
    // Every rank reads the same inputs and fails the same way: rank 0
    // speaks; another rank speaks only if rank 0 has not ended the job.
    if (rank != 0) std::this_thread::sleep_for(std::chrono::seconds(10));
    std::fprintf(stderr, "recsys_recommend: error: %s\n", message.c_str());
    std::fflush(stderr);
    if (size > 1) transport->Abort(code);
    recsys::FinalizeMpi();
    return code;
  }
  transport->FlushSends();
  transport->Barrier();  // wait here, asleep, not spinning in MPI_Finalize
  recsys::FinalizeMpi();
  return 0;
}
