#pragma once
// The uploader's handler: outputs of successful jobs go to every configured
// binary cache.
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/nix/nix_runner.hpp"

namespace flurry::uploader {

struct UploaderConfig {
  std::vector<std::string> caches;  // Nix store URLs
  std::string secret_key_file;      // signs what is uploaded; empty = unsigned
};

struct UploadOutcome {
  bus::Disposition disposition;
  std::string result;  // uploaded, skipped, failed
  int caches = 0;
};

// The store URL to copy to: `cache` with `secret-key=<file>` added when a
// signing key is configured.
std::string destination_url(const std::string& cache, const std::string& secret_key_file);

// Copies the outputs of a succeeded or skipped job to every cache. Copying
// again is harmless, so redelivery is safe. A failed copy is retried.
UploadOutcome handle_job_finished(const msg::JobFinished& job, std::uint64_t num_delivered, nix::NixRunner& nix,
                                  const UploaderConfig& config);

}  // namespace flurry::uploader
