// flurry-uploader: flurry.job.finished -> nix copy to binary caches.
#include <chrono>

#include "flurry/core/log.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/service/runtime.hpp"
#include "upload.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("uploader", argc, argv, [](service::Runtime& rt) {
    static nix::CliNixRunner nix(default_process_runner());
    static uploader::UploaderConfig cfg;
    cfg.caches = rt.config().get_string_list("uploader.caches", {});
    cfg.secret_key_file = rt.config().get_string("uploader.secret_key_file", "");
    if (!cfg.secret_key_file.empty() && !read_file(cfg.secret_key_file)) {
      throw ConfigError("uploader.secret_key_file " + cfg.secret_key_file + " is not readable");
    }
    cfg.branch_outputs.gcroots_dir = rt.config().get_string("uploader.gcroots_dir", "/nix/var/nix/gcroots/flurry");
    cfg.branch_outputs.outputs_dir = rt.config().get_string("uploader.outputs_dir", "");
    cfg.branch_outputs.rules = repo::read_branch_rules(rt.config());
    if (cfg.caches.empty()) log::warn("upload.no_caches", "uploader.caches is empty: outputs will not be uploaded");
    // How long a taken message stays with an instance that stopped answering
    // (killed) before another gets it; in-progress acks keep long work.
    const auto ack_wait = rt.config().get_duration_ms("uploader.ack_wait", std::chrono::seconds(60));
    if (ack_wait < std::chrono::seconds(1)) throw ConfigError("uploader.ack_wait must be at least 1s");
    bus::ConsumerSpec spec{.stream = std::string(subjects::kEventsStream),
                           .durable = "uploader",
                           .filter_subject = std::string(subjects::kJobFinished),
                           .max_deliver = static_cast<int>(rt.config().get_int("uploader.max_deliver", 10)),
                           .ack_wait = ack_wait,
                           .concurrency = static_cast<int>(rt.config().get_int("uploader.concurrency", 2))};
    rt.bus();
    auto& state = rt.state();
    rt.consume(spec, [&rt, &state](const bus::Delivery& d) {
      auto job = msg::decode_job_finished(d.data);
      if (!job) return bus::disposition_for(job.error(), d.num_delivered);
      auto start = std::chrono::steady_clock::now();
      auto o = uploader::handle_job_finished(*job, d.num_delivered, nix, cfg, &state);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rt.metrics().counter("uploads_total", "Job results handled by the uploader, by result.", {{"result", o.result}}).Increment();
      if (o.result != "skipped") {
        rt.metrics().histogram("upload_duration_seconds", "Time to copy a job's outputs to every cache.").Observe(secs);
        log::info("upload." + o.result, o.disposition.reason.empty() ? o.result : o.disposition.reason,
                  {{"eval_id", job->eval_id}, {"job_id", job->job_id}, {"attr", job->attr}, {"caches", o.caches},
                   {"gcroots", o.gcroots}, {"outputs", o.outputs}, {"seconds", secs}});
      }
      if (!o.warning.empty()) {
        rt.metrics().counter("branch_outputs_errors_total", "Gcroots or outputs files that could not be written.").Increment();
        log::warn("upload.branch_outputs_failed", o.warning, {{"eval_id", job->eval_id}, {"job_id", job->job_id}});
      }
      return o.disposition;
    });
  });
}
