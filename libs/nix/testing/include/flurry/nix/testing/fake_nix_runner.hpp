#pragma once
// A scripted NixRunner for unit tests: tests fill in what each call
// returns and inspect what was asked.
#include <algorithm>
#include <atomic>
#include <functional>
#include <chrono>
#include <thread>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "flurry/nix/nix_runner.hpp"

namespace flurry::nix::testing {

class FakeNixRunner final : public NixRunner {
 public:
  // --- what calls return ---
  Result<EvalResult> eval_result = EvalResult{};
  // Per evaluated set, keyed by render_attr_path(req.attr_path) (e.g.
  // "checks.aarch64-linux"); sets not listed get eval_result.
  std::map<std::string, Result<EvalResult>> eval_results;
  std::map<std::string, std::vector<std::string>> graph;      // drv -> input drvs
  std::map<std::string, std::vector<std::string>> features;   // drv -> requiredSystemFeatures
  std::set<std::string> valid;                                 // valid store paths
  std::map<std::string, BuildResult> build_results;            // drv -> result (default: succeeded)
  std::map<std::string, std::string> build_logs;               // drv -> log text sent to on_log
  std::map<std::string, Error> build_errors;                   // drv -> nix could not run
  std::map<std::string, Result<std::string>> json_results;     // joined attr path -> eval_json answer
  std::map<std::string, Derivation> derivations;
  std::optional<Error> copy_error;
  std::optional<Error> realise_error;

  // --- what was asked ---
  std::vector<EvalRequest> evals;
  std::vector<std::string> builds;
  std::vector<std::pair<std::string, std::vector<std::string>>> copies;
  std::vector<std::string> json_applies;
  std::vector<std::vector<std::string>> realised;

  // With req.on_attrs set, a successful result's attributes are handed
  // over in batches of `stream_batch` (0: one batch), in order, and the
  // returned result has none; an error from on_attrs is returned.
  Result<EvalResult> eval_attrs(const EvalRequest& req) override {
    if (on_eval) on_eval(req);
    Result<EvalResult> r = eval_result;
    std::size_t batch = 0;
    {
      std::lock_guard lock(mu_);
      evals.push_back(req);
      if (auto it = eval_results.find(render_attr_path(req.attr_path)); it != eval_results.end()) r = it->second;
      batch = stream_batch;
    }
    if (!r || !req.on_attrs) return r;
    auto attrs = std::move(r->attrs);
    r->attrs.clear();
    if (batch == 0) batch = std::max<std::size_t>(1, attrs.size());
    for (std::size_t i = 0; i < attrs.size(); i += batch) {
      std::vector<AttrResult> part(attrs.begin() + static_cast<long>(i),
                                   attrs.begin() + static_cast<long>(std::min(attrs.size(), i + batch)));
      if (auto d = req.on_attrs(std::move(part)); !d) return fail(d.error());
    }
    return r;
  }
  std::size_t stream_batch = 0;
  std::set<std::string> runs_until_cancelled;  // drvs whose build only ends when cancelled
  std::set<std::string> held;                  // drvs whose build ends (succeeded) once `release` is set, or when cancelled
  std::atomic<bool> release{false};
  // Called (unlocked) as each evaluation starts.
  std::function<void(const EvalRequest&)> on_eval;

  Result<DerivationGraph> derivation_graph(const std::vector<std::string>& drvs) override {
    std::lock_guard lock(mu_);
    DerivationGraph out;
    std::vector<std::string> todo = drvs;
    while (!todo.empty()) {
      auto d = todo.back();
      todo.pop_back();
      if (out.count(d)) continue;
      auto it = graph.find(d);
      auto& node = out[d];
      if (it != graph.end()) node.inputs = it->second;
      if (auto f = features.find(d); f != features.end()) node.required_features = f->second;
      for (const auto& i : node.inputs) todo.push_back(i);
    }
    return out;
  }
  Result<std::vector<std::string>> cached_paths(const std::string& store_url, const std::vector<std::string>& paths) override {
    std::lock_guard lock(mu_);
    if (cache_error) return fail(*cache_error);
    std::vector<std::string> out;
    auto it = caches.find(store_url);
    for (const auto& p : paths) {
      if (it != caches.end() && it->second.count(p)) out.push_back(p);
    }
    return out;
  }
  std::map<std::string, std::set<std::string>> caches;  // store URL -> paths it holds
  std::optional<Error> cache_error;                      // cached_paths fails with this when set

  Result<std::vector<std::string>> invalid_paths(const std::vector<std::string>& paths) override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& p : paths) {
      if (!valid.count(p)) out.push_back(p);
    }
    return out;
  }
  Result<BuildResult> build(const BuildRequest& req) override {
    std::unique_lock lock(mu_);
    builds.push_back(req.drv_path);
    if (runs_until_cancelled.count(req.drv_path) || held.count(req.drv_path)) {
      // Like a long build: ends when cancelled, when `release` is set for a
      // held one, or after 20 s as a success, so that a test waiting for
      // something else fails rather than hangs.
      const bool until_released = held.count(req.drv_path) > 0;
      auto log = build_logs.count(req.drv_path) ? build_logs[req.drv_path] : std::string();
      lock.unlock();
      if (req.on_log && !log.empty()) req.on_log(log);
      for (int i = 0; i < 2000 && !(req.cancel && req.cancel->load()) && !(until_released && release.load()); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (req.on_tick) req.on_tick();
      }
      BuildResult r;
      r.outcome = req.cancel && req.cancel->load() ? BuildResult::Outcome::kCancelled : BuildResult::Outcome::kSucceeded;
      return r;
    }
    if (auto e = build_errors.find(req.drv_path); e != build_errors.end()) return fail(e->second);
    auto log = build_logs.count(req.drv_path) ? build_logs[req.drv_path] : std::string();
    BuildResult r;
    if (auto it = build_results.find(req.drv_path); it != build_results.end()) {
      r = it->second;
    } else {
      r.outcome = BuildResult::Outcome::kSucceeded;
    }
    lock.unlock();
    if (req.on_log && !log.empty()) req.on_log(log);
    return r;
  }
  Result<void> copy_to(const std::string& store_url, const std::vector<std::string>& paths) override {
    std::lock_guard lock(mu_);
    if (copy_error) return fail(*copy_error);
    copies.emplace_back(store_url, paths);
    return {};
  }
  Result<std::string> eval_json(const std::string&, const std::vector<std::string>& attr_path, const std::string& apply,
                                std::chrono::milliseconds) override {
    std::lock_guard lock(mu_);
    json_applies.push_back(apply);
    std::string key;
    for (const auto& p : attr_path) key += (key.empty() ? "" : ".") + p;
    auto it = json_results.find(key);
    if (it == json_results.end()) return fail(Error::rejected("error: flake does not provide attribute '" + key + "'"));
    return it->second;
  }
  Result<Derivation> show_derivation(const std::string& drv_path) override {
    std::lock_guard lock(mu_);
    auto it = derivations.find(drv_path);
    if (it == derivations.end()) return fail(Error::not_found("no derivation " + drv_path));
    return it->second;
  }
  Result<void> realise(const std::vector<std::string>& drv_paths) override {
    std::lock_guard lock(mu_);
    realised.push_back(drv_paths);
    if (realise_error) return fail(*realise_error);
    return {};
  }

 private:
  std::mutex mu_;
};

}  // namespace flurry::nix::testing
