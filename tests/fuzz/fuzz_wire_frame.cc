// Fuzzes the hot-path frames as a parameter server receives them: the input
// is one pull or push frame (common/wire.h) from a worker, handed to the real
// server loop (ps/server_loop.cc, RunServer) over in-process transports, so
// FrameReader, the server's section parsing and ServerShard's key checks run
// as in a job. A frame must be served or refused with InputError. The
// worker has a shared area (1 MiB), so a pull's reply place is checked and
// written as in a job, and so is a placed push's.
//
// Input: byte 0 picks the mode (bit 0: --sync; bits 1-2: pull, push, eval
// pull, placed push; bits 3-4: sgd, adagrad, adam, adam), the rest is the
// frame. A placed push's is the note (ReplyPlace: where the frame is), then
// the frame, which the target writes at offset kPushAt of the worker's area
// (as much as fits), whatever place the note names. A pull whose header says
// kRequestPlaced is the message (header, reply place, the place of its
// sections), then its sections, which the target writes at kPushAt too.
// With RECSYS_FUZZ_SEEDS=DIR set, the target writes well-formed seed inputs
// (made with FrameWriter, as PsClient makes them) to DIR and exits.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/control.h"
#include "common/error.h"
#include "common/keys.h"
#include "common/topology.h"
#include "common/transport.h"
#include "common/wire.h"
#include "ps/server_loop.h"

namespace {

using namespace recsys;

// A sparse table, a dense block whose last row is partial, and a width-1
// table: the shapes the server sizes replies and gradients from.
std::vector<TableSpec> Tables() {
  std::vector<TableSpec> tables(3);
  tables[0].id = 0;
  tables[0].name = "emb";
  tables[0].width = 4;
  tables[0].init = InitKind::kNormal;
  tables[0].init_scale = 0.01f;
  tables[1].id = 1;
  tables[1].name = "dense";
  tables[1].width = 3;
  tables[1].init = InitKind::kUniform;
  tables[1].init_scale = 0.1f;
  tables[1].dense_size = 7;
  tables[2].id = 2;
  tables[2].name = "bias";
  tables[2].width = 1;
  return tables;
}

constexpr std::size_t kPushAt = 4096;

// Writes mode byte + frame to dir/name.
void WriteSeed(const std::string& dir, const char* name, std::uint8_t mode, const Bytes& frame) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.put(static_cast<char>(mode));
  out.write(frame.data(), static_cast<std::streamsize>(frame.size()));
}

// A frame of every table: two embedding rows, every dense row, one bias row;
// with gradients (a push) or without (a pull, whose reply goes to `place` in
// the worker's shared area when place.bytes > 0).
Bytes SeedFrame(std::uint64_t request, bool push, ReplyPlace place = ReplyPlace()) {
  const std::vector<TableSpec> tables = Tables();
  const std::vector<std::vector<Key>> keys = {
      {MakeKey(kFieldUser, 7), MakeKey(kFieldItem, 3)},
      {MakeKey(kFieldDense, 0), MakeKey(kFieldDense, 1), MakeKey(kFieldDense, 2)},
      {MakeKey(kFieldItem, 3)}};
  Bytes frame;
  FrameWriter out(&frame);
  FrameHeader header;
  header.request = request;
  header.sections = static_cast<std::uint32_t>(tables.size());
  out.Put(header);
  if (!push) out.Put(place);
  for (std::size_t t = 0; t < tables.size(); ++t) {
    SectionHeader section;
    section.table = static_cast<std::uint32_t>(t);
    section.n = static_cast<std::uint32_t>(keys[t].size());
    out.Put(section);
    out.PutArray(keys[t].data(), keys[t].size());
    if (push) {
      const std::vector<Real> grads(keys[t].size() * static_cast<std::size_t>(tables[t].width), 0.5f);
      out.PutArray(grads.data(), grads.size());
    }
  }
  return frame;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* dir = std::getenv("RECSYS_FUZZ_SEEDS");
  if (dir == nullptr) return 0;
  WriteSeed(dir, "pull", 0 << 1, SeedFrame(1, false));
  WriteSeed(dir, "push_adam", (1 << 1) | (2 << 3), SeedFrame(2, true));
  WriteSeed(dir, "push_adagrad_sync", 1 | (1 << 1) | (1 << 3), SeedFrame(3, true));
  WriteSeed(dir, "eval_pull_sync", 1 | (2 << 1), SeedFrame(4, false));
  WriteSeed(dir, "push_sgd", (1 << 1), SeedFrame(5, true));
  WriteSeed(dir, "pull_placed", 0 << 1, SeedFrame(6, false, ReplyPlace{64, 4096}));
  {
    // Its sections at kPushAt, the message naming them there.
    const Bytes pull = SeedFrame(8, false);
    const std::size_t head = sizeof(FrameHeader) + sizeof(ReplyPlace);
    Bytes placed_pull;
    FrameWriter out(&placed_pull);
    FrameHeader header;
    std::memcpy(&header, pull.data(), sizeof(header));
    header.step = kRequestPlaced;
    out.Put(header);
    out.Put(ReplyPlace{64, 1024});  // the reply's place, apart from the sections'
    out.Put(ReplyPlace{kPushAt, pull.size() - head});
    placed_pull.insert(placed_pull.end(), pull.begin() + static_cast<std::ptrdiff_t>(head), pull.end());
    WriteSeed(dir, "pull_request_placed", 0 << 1, placed_pull);
  }
  const Bytes push = SeedFrame(7, true);
  Bytes placed;
  FrameWriter out(&placed);
  out.Put(ReplyPlace{kPushAt, push.size()});
  placed.insert(placed.end(), push.begin(), push.end());
  WriteSeed(dir, "push_placed_adam_sync", 1 | (3 << 1) | (2 << 3), placed);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0];
  constexpr int kTags[] = {kTagPull, kTagPush, kTagEvalPull, kTagPushPlaced};
  constexpr const char* kOptimizers[] = {"sgd", "adagrad", "adam", "adam"};
  Config config;
  config.sync = (mode & 1) != 0;
  config.optimizer = kOptimizers[(mode >> 3) & 3];
  config.lr = 0.01f;
  const Topology topology(3, 1);  // rank 0 coordinator, 1 server, 2 worker

  auto transports = MakeLocalTransports(3, std::size_t{1} << 20);
  Transport& coordinator = *transports[0];
  Transport& server = *transports[1];
  Transport& worker = *transports[2];
  Setup setup;
  setup.tables = Tables();
  SendControl(coordinator, 1, kTagSetup, setup);
  const int tag = kTags[(mode >> 1) & 3];
  // The frame the server reads: the message, or for a placed push, what is
  // in the worker's area where the note says.
  const std::uint8_t* frame = data + 1;
  std::size_t frame_size = size - 1;
  const SharedArea area = worker.OwnArea();
  std::uint32_t step = 0;
  if (frame_size >= sizeof(FrameHeader)) std::memcpy(&step, frame + offsetof(FrameHeader, step), sizeof(step));
  const bool pull = tag == kTagPull || tag == kTagEvalPull;
  if (tag == kTagPushPlaced || (pull && step == kRequestPlaced)) {
    const std::size_t note = std::min(
        frame_size, tag == kTagPushPlaced ? sizeof(ReplyPlace) : sizeof(FrameHeader) + 2 * sizeof(ReplyPlace));
    std::memcpy(area.data + kPushAt, frame + note, std::min(frame_size - note, area.size - kPushAt));
    worker.Send(1, tag, Bytes(frame, frame + note));
    frame_size = note;
  } else {
    worker.Send(1, tag, Bytes(frame, frame + frame_size));
  }
  Command stop;
  stop.kind = Command::kStop;
  SendControl(coordinator, 1, kTagCommand, stop);
  try {
    RunServer(server, topology, config);
  } catch (const InputError&) {
    return 0;  // refused: the expected outcome for a malformed frame
  }
  // Served: the pull's reply or the push's ack carries the frame's request id.
  Message reply;
  // With one worker even --sync applies a push at once.
  if (!worker.TryRecv(1, Transport::kAnyTag, &reply)) __builtin_trap();
  std::uint64_t request = 0;
  if (frame_size < sizeof(request)) __builtin_trap();  // served a frame without a header?
  if (tag == kTagPushPlaced) {
    ReplyPlace place;
    std::memcpy(&place, frame, sizeof(place));  // served: a whole note, inside the area
    std::memcpy(&request, area.data + place.offset, sizeof(request));
  } else {
    std::memcpy(&request, frame, sizeof(request));
  }
  FrameReader in(reply.data, "reply");
  if (in.Get<std::uint64_t>() != request) __builtin_trap();
  return 0;
}
