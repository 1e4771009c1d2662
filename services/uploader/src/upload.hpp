#pragma once
// The uploader's handler: outputs of successful jobs go to every configured
// binary cache.
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/nix/nix_runner.hpp"
#include "flurry/state/store.hpp"
#include "branch_outputs.hpp"

namespace flurry::uploader {

struct UploaderConfig {
  std::vector<std::string> caches;  // Nix store URLs
  std::string secret_key_file;      // signs what is uploaded; empty = unsigned
  BranchOutputsConfig branch_outputs;  // gcroots and outputs files per branch rules
};

struct UploadOutcome {
  bus::Disposition disposition;
  std::string result;  // uploaded, skipped, failed
  int caches = 0;
  int gcroots = 0;
  int outputs = 0;
  std::string warning;  // gcroots or outputs could not be written
};

// The store URL to copy to: `cache` with `secret-key=<file>` added when a
// signing key is configured.
std::string destination_url(const std::string& cache, const std::string& secret_key_file);

// Copies the outputs of a succeeded or skipped job to every cache, then
// (when `state` is given and the config asks for them) writes the gcroots
// and outputs files its branch gets. Copying again is harmless, so
// redelivery is safe. A failed copy is retried; gcroots and outputs files
// that cannot be written are a warning (the upload stands), retried while
// the store cannot say which branch the job is of.
UploadOutcome handle_job_finished(const msg::JobFinished& job, std::uint64_t num_delivered, nix::NixRunner& nix,
                                  const UploaderConfig& config, state::StateStore* state = nullptr);

}  // namespace flurry::uploader
