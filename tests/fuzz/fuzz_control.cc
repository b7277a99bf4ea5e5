// Fuzzes control-message decoding (common/control.h DecodeControl): the
// bytes of a message from another rank must decode or throw InputError.
// Input: byte 0 picks the message type, the rest is the message. With
// RECSYS_FUZZ_SEEDS=DIR set, the target writes one encoded message of each
// type to DIR and exits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "common/control.h"
#include "common/error.h"

namespace {

template <typename T>
void Decode(const recsys::Bytes& bytes) {
  try {
    const T message = recsys::DecodeControl<T>(bytes, "fuzzed control message");
    // A decoded message encodes again (what a rank forwarding it would do).
    (void)recsys::EncodeControl(message);
  } catch (const recsys::InputError&) {
    // refused: the expected outcome for malformed bytes
  }
}

template <typename T>
void WriteSeed(const std::string& dir, const char* name, std::uint8_t type, const T& message) {
  const recsys::Bytes bytes = recsys::EncodeControl(message);
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.put(static_cast<char>(type));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  using namespace recsys;
  const char* dir = std::getenv("RECSYS_FUZZ_SEEDS");
  if (dir == nullptr) return 0;
  WorkerHello hello;
  hello.items = {1, 2, 3, 1000000};
  hello.user_slot_fields = {2, 3, 4};
  hello.item_slot_fields = {5, 5};
  hello.users = 10;
  hello.train_positives = 40;
  WriteSeed(dir, "hello", 0, hello);
  Setup setup;
  setup.items = {1, 2, 3};
  setup.slot_field = {0, 1, 5};
  setup.tables.resize(2);
  setup.tables[0].name = "emb";
  setup.tables[0].width = 8;
  setup.tables[0].init = InitKind::kNormal;
  setup.tables[1].id = 1;
  setup.tables[1].name = "w0";
  setup.tables[1].width = 1;
  setup.tables[1].dense_size = 1;
  WriteSeed(dir, "setup", 1, setup);
  Command command;
  command.kind = Command::kTrainEpoch;
  command.epoch = 3;
  command.steps = 17;
  WriteSeed(dir, "command", 2, command);
  EpochReport epoch;
  epoch.loss_sum = 12.5;
  epoch.examples = 100;
  WriteSeed(dir, "epoch_report", 3, epoch);
  EvalReport eval;
  eval.sums.ks = {5, 10};
  eval.sums.hits = {3, 4};
  eval.sums.ndcg = {1.5, 2.0};
  eval.sums.users = 7;
  WriteSeed(dir, "eval_report", 4, eval);
  ServerStats stats;
  stats.rank = 1;
  stats.keys = 99;
  WriteSeed(dir, "server_stats", 5, stats);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace recsys;
  if (size < 1) return 0;
  const Bytes bytes(data + 1, data + size);
  switch (data[0] % 6) {
    case 0: Decode<WorkerHello>(bytes); break;
    case 1: Decode<Setup>(bytes); break;
    case 2: Decode<Command>(bytes); break;
    case 3: Decode<EpochReport>(bytes); break;
    case 4: Decode<EvalReport>(bytes); break;
    default: Decode<ServerStats>(bytes); break;
  }
  return 0;
}
