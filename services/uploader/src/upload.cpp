#include "upload.hpp"

namespace flurry::uploader {

std::string destination_url(const std::string& cache, const std::string& key) {
  if (key.empty()) return cache;
  return cache + (cache.find('?') == std::string::npos ? "?" : "&") + "secret-key=" + key;
}

UploadOutcome handle_job_finished(const msg::JobFinished& job, std::uint64_t num_delivered, nix::NixRunner& nix,
                                  const UploaderConfig& cfg) {
  UploadOutcome o;
  if (!msg::is_success(job.state) || job.outputs.empty() || cfg.caches.empty()) {
    o.result = "skipped";
    o.disposition = bus::Disposition::ack();
    return o;
  }
  std::vector<std::string> paths;
  for (const auto& [_, p] : job.outputs) paths.push_back(p);
  for (const auto& cache : cfg.caches) {
    auto r = nix.copy_to(destination_url(cache, cfg.secret_key_file), paths);
    if (!r) {
      o.result = "failed";
      o.disposition = bus::disposition_for(Error::transient(r.error().message), num_delivered);
      return o;
    }
    ++o.caches;
  }
  o.result = "uploaded";
  o.disposition = bus::Disposition::ack();
  return o;
}

}  // namespace flurry::uploader
