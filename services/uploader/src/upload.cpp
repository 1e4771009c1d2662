#include "upload.hpp"

namespace flurry::uploader {

std::string destination_url(const std::string& cache, const std::string& key) {
  if (key.empty()) return cache;
  return cache + (cache.find('?') == std::string::npos ? "?" : "&") + "secret-key=" + key;
}

UploadOutcome handle_job_finished(const msg::JobFinished& job, std::uint64_t num_delivered, nix::NixRunner& nix,
                                  const UploaderConfig& cfg, state::StateStore* state) {
  UploadOutcome o;
  const bool keep = state && (!cfg.branch_outputs.gcroots_dir.empty() || !cfg.branch_outputs.outputs_dir.empty());
  if (!msg::is_success(job.state) || job.outputs.empty() || (cfg.caches.empty() && !keep)) {
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
  if (keep) {
    auto eval = state->get_eval(job.eval_id);
    if (!eval) {
      o.result = "failed";
      o.disposition = bus::disposition_for(Error::transient(eval.error().message), num_delivered);
      return o;
    }
    if (eval->has_value()) {
      auto kept = keep_branch_outputs(job, **eval, cfg.branch_outputs);
      if (kept) {
        o.gcroots = kept->gcroots;
        o.outputs = kept->outputs;
      } else {
        o.warning = kept.error().message;
      }
    }
  }
  o.result = "uploaded";
  o.disposition = bus::Disposition::ack();
  return o;
}

}  // namespace flurry::uploader
