// Rank 0: agrees the item universe and slot layout with the workers, hands
// the model's tables to the servers, runs the schedule (train an epoch,
// evaluate, repeat), reduces the metrics exactly and reports them.
#ifndef RECSYS_PS_COORDINATOR_H_
#define RECSYS_PS_COORDINATOR_H_

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/control.h"
#include "common/metrics.h"
#include "common/table_spec.h"
#include "common/topology.h"
#include "common/transport.h"

namespace recsys {

// One epoch's reduced results, as printed and written to --metrics-out.
struct EpochResult {
  int epoch = 0;
  double loss = 0.0;  // mean training loss per example
  RankingSums metrics;     // test
  RankingSums validation;  // with --validation; users == 0 otherwise
  std::uint64_t examples = 0;
  double train_seconds = 0.0;
  double eval_seconds = 0.0;
  double samples_per_second = 0.0;
  std::uint64_t pulled_bytes = 0;
  std::uint64_t pushed_bytes = 0;
  EpochReport totals;  // summed over workers
};

// The job cannot go on: a rank made no progress for --stall-timeout seconds.
// The message names the rank(s) and what the coordinator was waiting for.
class StallError : public std::runtime_error {
 public:
  explicit StallError(const std::string& what) : std::runtime_error(what) {}
};

// Builds the model's tables from the agreed slot layout (the coordinator
// lives in ps/, which does not know the models; main supplies this).
using MakeTablesFn = std::function<std::vector<TableSpec>(const std::vector<std::uint8_t>& slot_field)>;

// Runs the coordinator; returns each epoch's results. Prints one line per
// epoch to stdout and, with config.metrics_out, writes JSON lines to
// "<metrics_out>.partial" and renames it to metrics_out once the run ends.
//
// Checkpoints (config.checkpoint_dir): at the end of every due epoch, after
// its evaluation, every server writes its shard and the coordinator writes
// the manifest, then LATEST (ps/checkpoint.h). With config.resume or
// config.init_from the checkpoint is verified in full before anything is
// loaded; a resumed run continues at the checkpoint's epoch + 1 and its
// results include the restored epochs. With config.eval_only the restored
// model is evaluated once (one result) and the job ends. Throws InputError
// for a bad checkpoint, StallError when the watchdog fires.
std::vector<EpochResult> RunCoordinator(Transport& transport, const Topology& topology, const Config& config,
                                        const MakeTablesFn& make_tables);

// Formats one epoch as a JSON object (one line, no newline).
std::string EpochJson(const EpochResult& result, const std::vector<ServerStats>& servers);

// The index of the epoch whose test metrics a run reports: with validation,
// the best validation HR at the selection cut-off (earliest on ties);
// otherwise the last epoch. `results` is non-empty.
std::size_t SelectEpoch(const std::vector<EpochResult>& results, bool validation);

// The cut-off used to select epochs: K = 10 if asked for, else the largest.
std::size_t SelectionCutoff(const std::vector<int>& ks);

}  // namespace recsys

#endif  // RECSYS_PS_COORDINATOR_H_
