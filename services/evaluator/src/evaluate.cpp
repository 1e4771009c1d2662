#include "evaluate.hpp"

#include "flurry/repo/repo_config.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/ids.hpp"

namespace flurry::evaluator {
namespace {

using msg::JobState;

// The flurry/eval description once the jobs are known: "12 jobs, 1 failed
// to evaluate, 2 warnings".
std::string describe_jobs(int jobs, int eval_errors, std::size_t warnings) {
  std::string desc = std::to_string(jobs) + (jobs == 1 ? " job" : " jobs");
  if (eval_errors > 0) desc += ", " + std::to_string(eval_errors) + " failed to evaluate";
  if (warnings > 0) desc += ", " + std::to_string(warnings) + (warnings == 1 ? " warning" : " warnings");
  return desc;
}

// Which of `missing` (output paths not in the local store) the binary
// caches hold. An unreachable cache only means nothing counts as cached
// there: it adds a warning, without the URL's credentials.
std::set<std::string> cached_outputs(nix::NixRunner& nix, const std::vector<std::string>& caches, const std::set<std::string>& missing,
                                     std::vector<std::string>& warnings) {
  std::set<std::string> held_somewhere;
  const std::vector<std::string> paths(missing.begin(), missing.end());
  for (const auto& cache : caches) {
    auto held = nix.cached_paths(cache, paths);
    if (held) {
      held_somewhere.insert(held->begin(), held->end());
      continue;
    }
    // (The runner's error never shows the URL's credentials.)
    const auto w = "warning: binary cache " + text::display_url(cache) + " could not be queried: " + log::redact(held.error().message);
    if (std::find(warnings.begin(), warnings.end(), w) == warnings.end()) warnings.push_back(w);
  }
  return held_somewhere;
}

// How a cancel shows on the victim's flurry/eval.
using pipeline::CancelStatus;

// How an eval whose evaluation failed after some of its jobs were recorded
// shows its end.
const CancelStatus kFailedAfterBatches{msg::StatusState::kFailure, "", true, state::EvalState::kFailed};

class Handler {
 public:
  // `repeat`: the change is evaluated again on purpose (a re-run, an
  // approval), even if an eval of the same head lives.
  Handler(const msg::ChangeEvent& change, std::uint64_t delivered, EvalPorts ports, const EvaluatorConfig& cfg, bool repeat = false)
      : change_(change), delivered_(delivered), ports_(ports), cfg_(cfg), links_{cfg.public_url},
        eval_id_(state::eval_id_for_change(change.id)), repeat_(repeat) {}

  EvalOutcome run();

 private:
  bool last_delivery() const { return delivered_ >= static_cast<std::uint64_t>(std::max(1, cfg_.max_deliver)); }
  EvalOutcome outcome(std::string result) const {
    EvalOutcome o;
    o.eval_id = eval_id_;
    o.result = std::move(result);
    return o;
  }
  // The store or the bus failed: nothing can be recorded, try again later.
  EvalOutcome retry(const Error& e) const;
  // Fetching or nix failed for reasons outside the repository: try again,
  // unless this was the last delivery, then the eval fails with `e`
  // (its message after `what`, when given).
  EvalOutcome infrastructure(const std::string& what, const Error& e);
  // The eval cannot be evaluated: failed in the store, failure status,
  // eval.finished. Replays identically.
  EvalOutcome fail_eval(const std::string& error, const std::string& result = "eval_failed");
  Result<std::optional<state::EvalRecord>> load() { return ports_.state.get_eval(eval_id_); }
  // Everything that follows add_jobs, derived from the stored jobs and
  // transition only, so that a replay publishes the same messages.
  Result<void> publish_jobs(const state::Transition& t, EvalOutcome& o);
  EvalOutcome replay(const state::EvalRecord& eval);
  EvalOutcome evaluate(const state::EvalRecord& eval);
  // The pull request was closed: its live eval is cancelled.
  EvalOutcome close_pull_request();
  // The pull request may not run yet: it waits, parked, for an approval.
  EvalOutcome await_approval(const std::string& why);
  // One branch, tag or pull request of one project.
  std::string ref_key() const;
  std::int64_t received_ms(std::int64_t fallback) const;
  // What is evaluated: the pushed commit, or a pull request's head merged
  // onto its base.
  struct Checkout {
    std::string flake_ref;
    std::string rev;
  };
  Result<Checkout> checkout();
  // Cancels `victim` (queued jobs end cancelled) and publishes what that
  // ended: job results, statuses, its flurry/eval status, eval.finished.
  Result<void> cancel(const std::string& victim, const std::string& reason, const CancelStatus& shown = {});
  // Statuses, results and build requests for one recorded batch.
  Result<void> publish_batch(const state::EvalRecord& eval, const std::vector<state::JobSpec>& jobs, const state::Transition& t);

  const msg::ChangeEvent& change_;
  std::uint64_t delivered_;
  EvalPorts ports_;
  const EvaluatorConfig& cfg_;
  pipeline::Links links_;
  std::string eval_id_;
  bool repeat_;
};

EvalOutcome Handler::retry(const Error& e) const {
  auto o = outcome("retry");
  o.error = e.message;
  o.disposition = bus::retry_later(e, delivered_);
  return o;
}

EvalOutcome Handler::infrastructure(const std::string& what, const Error& e) {
  const std::string text = what.empty() ? e.message : what + ": " + e.message;
  if (e.code == ErrorCode::kTransient && !last_delivery()) {
    auto o = retry(e);
    o.error = text;
    return o;
  }
  return fail_eval(text);
}

EvalOutcome Handler::fail_eval(const std::string& error, const std::string& result) {
  const std::string text = error.empty() ? "evaluation failed" : error;
  auto failed = ports_.state.fail_eval(eval_id_, text, ports_.clock.now_ms());
  if (!failed) return retry(failed.error());
  const auto& e = *failed;
  // The stored error and finish time, not ours: a replay (or an eval that
  // ended another way meanwhile) publishes what the store answered.
  if (e.state == state::EvalState::kFailed && e.jobs_total == 0) {
    auto status = pipeline::eval_status(e, msg::StatusState::kFailure, e.error, e.finished_ms * 1000 + 1, links_);
    if (auto r = pipeline::publish_status(ports_.bus, status); !r) return retry(r.error());
    if (auto r = pipeline::publish_eval_finished(ports_.bus, e, e.state, {e.jobs_total, e.jobs_pending, e.jobs_failed, e.finished_ms});
        !r) {
      return retry(r.error());
    }
  }
  auto o = outcome(result);
  o.error = e.error;
  o.disposition = bus::Disposition::ack();
  return o;
}

Result<void> Handler::publish_jobs(const state::Transition& t, EvalOutcome& o) {
  auto loaded = load();
  if (!loaded) return fail(loaded.error());
  if (!loaded->has_value()) return fail(Error::transient("eval " + eval_id_ + " vanished"));
  const auto& eval = **loaded;
  // The jobs' identities, for their pending statuses.
  auto jobs = ports_.state.list_jobs(eval_id_);
  if (!jobs) return fail(jobs.error());

  std::set<std::string> ended;
  int eval_errors = 0;
  for (const auto& j : t.ended) {
    ended.insert(j.id);
    eval_errors += j.state == JobState::kEvalFailed;
    o.skipped += j.state == JobState::kSkipped;
  }
  for (const auto& j : *jobs) {
    if (ended.count(j.id)) continue;  // published with the transition
    // Queued when created, whatever it is now (a replay may come after
    // builds started): the same pending status as the first time.
    auto as_created = j;
    as_created.state = JobState::kQueued;
    if (auto r = pipeline::publish_status(ports_.bus, pipeline::job_status(eval, as_created, links_)); !r) return r;
  }
  // Terminal statuses and job.finished for the jobs evaluation or a failed
  // dependency ended, build requests for the ready ones.
  state::Transition without_end = t;
  without_end.eval_finished = false;
  if (auto r = pipeline::publish_transition({ports_.bus, ports_.state}, eval, without_end, links_); !r) return r;

  const auto desc = describe_jobs(t.tally.jobs_total, eval_errors, eval.warnings.size());
  auto status = pipeline::eval_status(eval, msg::StatusState::kSuccess, desc, eval.created_ms * 1000 + 1, links_);
  if (auto r = pipeline::publish_status(ports_.bus, status); !r) return r;
  if (t.eval_finished) {
    if (auto r = pipeline::publish_eval_finished(ports_.bus, eval, t.eval_state, t.tally); !r) return r;
  }
  o.jobs = t.tally.jobs_total;
  o.eval_errors = eval_errors;
  o.ready = static_cast<int>(t.ready.size());
  return {};
}

EvalOutcome Handler::replay(const state::EvalRecord& eval) {
  // Failed as a whole (no jobs were ever added): the same failure again.
  if (eval.state == state::EvalState::kFailed && eval.jobs_total == 0 && !eval.error.empty()) {
    return fail_eval(eval.error, "replayed");
  }
  // Failed after some of its jobs were recorded: the same failure again.
  if (eval.cancelled && eval.cancel_ends_as == state::EvalState::kFailed) {
    if (auto r = cancel(eval_id_, eval.cancel_reason, kFailedAfterBatches); !r) return retry(r.error());
    auto o = outcome("replayed");
    o.error = eval.cancel_reason;
    o.disposition = bus::Disposition::ack();
    return o;
  }
  // Cancelled before it had jobs (superseded): finish publishing that.
  if (eval.state == state::EvalState::kCancelled && eval.jobs_total == 0) {
    if (auto r = cancel(eval_id_, eval.error); !r) return retry(r.error());
    auto o = outcome("replayed");
    o.disposition = bus::Disposition::ack();
    return o;
  }
  // add_jobs on an eval that has its jobs returns the stored transition.
  auto t = ports_.state.add_jobs(eval_id_, {}, ports_.clock.now_ms());
  if (!t) {
    // Ended without jobs in some other way (cancelled): nothing to publish.
    if (t.error().code == ErrorCode::kRejected) {
      auto o = outcome("replayed");
      o.disposition = bus::Disposition::ack();
      return o;
    }
    return retry(t.error());
  }
  auto o = outcome("replayed");
  if (auto r = publish_jobs(*t, o); !r) return retry(r.error());
  o.disposition = bus::Disposition::ack();
  return o;
}

bool missing_attribute_set(const std::string& error) { return error.find("does not provide attribute") != std::string::npos; }

Result<void> Handler::cancel(const std::string& victim, const std::string& reason, const CancelStatus& shown) {
  auto t = pipeline::cancel_and_publish({ports_.bus, ports_.state}, victim, reason, ports_.clock.now_ms(), shown, links_);
  // A closed pull request holds its ref with an id that is no eval: there
  // is nothing to cancel.
  if (!t && t.error().code == ErrorCode::kNotFound) return {};
  if (!t) return fail(t.error());
  return {};
}

std::string Handler::ref_key() const {
  return change_.repo.forge + "/" + change_.repo.owner + "/" + change_.repo.name + "/" + change_.ref;
}

std::int64_t Handler::received_ms(std::int64_t fallback) const {
  return change_.received_at_ms > 0 ? change_.received_at_ms : fallback;
}

EvalOutcome Handler::close_pull_request() {
  // The close takes the pull request's ref like a push would, so the eval
  // it replaces is cancelled and a push of it that arrives late cancels
  // itself; a reopened pull request replaces it in turn.
  auto victim = ports_.state.supersede(ref_key(), eval_id_, received_ms(ports_.clock.now_ms()));
  if (!victim) return retry(victim.error());
  if (ports_.catalog) {
    if (auto r = ports_.catalog->close_ref({change_.repo.forge, change_.repo.owner, change_.repo.name}, change_.ref); !r) {
      return retry(r.error());
    }
  }
  auto o = outcome("closed");
  if (!victim->empty() && *victim != eval_id_) {
    const auto& pr = change_.pull_request;
    if (auto r = cancel(*victim, "pull request #" + std::to_string(pr.number) + " was closed"); !r) return retry(r.error());
    o.eval_id = *victim;
  }
  o.disposition = bus::Disposition::ack();
  return o;
}

Result<Handler::Checkout> Handler::checkout() {
  const auto mirror = mirror_dir(cfg_.work_dir, change_.repo);
  // Private repositories: the forge's credentials, for its own host only.
  std::map<std::string, std::string> auth;
  for (const auto* url : {&change_.repo.clone_url, &change_.pull_request.head_clone_url}) {
    if (url->empty() || !ports_.clone_auth) continue;
    auto header = ports_.clone_auth(change_.repo, *url);
    if (!header) return fail(Error{header.error().code, "no credentials to fetch with: " + header.error().message});
    auth[*url] = *header;
  }
  auto fetch = [&](const std::string& url, const std::string& ref, const std::string& rev) {
    return ports_.git.fetch({url, ref, rev, mirror, auth[url]});
  };
  // The head: from the repository the change is about; a pull request's
  // head is there under the forge's ref even when it comes from a fork,
  // else it is fetched from the fork.
  auto head = fetch(change_.repo.clone_url, change_.ref, change_.rev);
  const auto& pr = change_.pull_request;
  if (!head && change_.is_pull_request() && !pr.head_clone_url.empty() && pr.head_clone_url != change_.repo.clone_url) {
    head = fetch(pr.head_clone_url, "refs/heads/" + pr.head_branch, change_.rev);
  }
  if (!head) return fail(Error{head.error().code, "cannot fetch " + change_.rev + ": " + head.error().message});
  if (!change_.is_pull_request()) return Checkout{*head, change_.rev};

  // A pull request is evaluated merged onto its base, as the forge's merge
  // ref would be: the base as the event saw it, or the branch's head now
  // when the event did not say (or that commit is gone).
  std::string base_rev = pr.base_rev;
  if (!base_rev.empty() && !fetch(change_.repo.clone_url, "refs/heads/" + pr.base_branch, base_rev)) {
    base_rev.clear();
  }
  if (base_rev.empty()) {
    auto now = ports_.git.fetch_branch_head(change_.repo.clone_url, pr.base_branch, mirror, auth[change_.repo.clone_url]);
    if (!now) return fail(Error{now.error().code, "cannot fetch the base branch " + pr.base_branch + ": " + now.error().message});
    base_rev = *now;
  }
  auto merged = ports_.git.merge(mirror, base_rev, change_.rev);
  if (!merged) {
    if (merged.error().code == ErrorCode::kRejected) {
      return fail(Error::rejected("this pull request cannot be merged into " + pr.base_branch + ": " + merged.error().message));
    }
    return fail(Error{merged.error().code, "cannot merge onto " + pr.base_branch + ": " + merged.error().message});
  }
  return Checkout{merged->flake_ref, merged->rev};
}

EvalOutcome Handler::evaluate(const state::EvalRecord& eval) {
  auto pending = pipeline::eval_status(eval, msg::StatusState::kPending, "Evaluating", eval.created_ms * 1000, links_);
  if (auto r = pipeline::publish_status(ports_.bus, pending); !r) return retry(r.error());

  // One live eval per branch, tag or pull request: a newer push cancels
  // the older eval's queued builds; an older push arriving late cancels
  // itself.
  auto victim = ports_.state.supersede(ref_key(), eval_id_, received_ms(eval.created_ms));
  if (!victim) return retry(victim.error());
  if (*victim == eval_id_) {
    if (auto r = cancel(eval_id_, "superseded by a newer push to " + change_.ref); !r) return retry(r.error());
    auto o = outcome("superseded");
    o.disposition = bus::Disposition::ack();
    return o;
  }
  if (!victim->empty()) {
    if (auto r = cancel(*victim, "superseded by " + change_.rev.substr(0, 12)); !r) return retry(r.error());
  }

  auto checked_out = checkout();
  if (!checked_out) {
    if (checked_out.error().code == ErrorCode::kRejected && change_.is_pull_request()) return fail_eval(checked_out.error().message);
    return infrastructure("", checked_out.error());
  }

  // Per-repository configuration from the commit evaluated.
  auto loaded = repo::load_repo_config(ports_.git, mirror_dir(cfg_.work_dir, change_.repo), checked_out->rev,
                                       text::split(cfg_.attribute, '.'));
  if (!loaded) {
    if (loaded.error().code == ErrorCode::kRejected) return fail_eval(loaded.error().message);
    return infrastructure("cannot read the repository's config", loaded.error());
  }
  const repo::RepoConfig& repo_cfg = *loaded;
  std::string flake_ref = checked_out->flake_ref;
  if (repo_cfg.flake_dir != ".") flake_ref += "&dir=" + repo_cfg.flake_dir;
  // The flake's own lock file is all Nix 2.8 can use (it has no
  // --reference-lock-file).
  if (repo_cfg.lock_file != "flake.lock" && repo_cfg.lock_file != repo_cfg.flake_dir + "/flake.lock") {
    return fail_eval(repo_cfg.file + ": lock_file = " + repo_cfg.lock_file +
                     " is not supported: this evaluator's nix only uses the flake's own flake.lock");
  }

  const bool cache_failures = repo_cfg.cache_failed_builds.value_or(cfg_.cache_failed_builds);
  // Jobs are recorded and their builds requested batch by batch while nix
  // still evaluates (streaming): builds start before the evaluation ends.
  auto o = outcome("evaluated");
  JobIndex index;  // job ids by drv, over every batch so far
  nix::DerivationGraph graph;  // derivation closures, over every batch so far
  // Served: the configured systems and features plus those of every
  // builder that announced itself (a store that does not answer leaves the
  // former).
  const auto& served = cfg_.build_systems.empty() ? cfg_.systems : cfg_.build_systems;
  Builders builders{{served.begin(), served.end()}, {cfg_.build_features.begin(), cfg_.build_features.end()}, {}};
  if (auto announced = ports_.state.list_builders(ports_.clock.now_ms())) builders.announced = std::move(*announced);
  std::optional<Error> store_error;  // the store or the bus failed while recording a batch
  std::optional<Error> query_error;  // nix's store queries failed
  bool cancelled = false;            // cancelled (superseded) while evaluating
  std::vector<std::string> warnings = repo_cfg.warnings;
  int eval_errors = 0;
  auto add_batch = [&](std::vector<nix::AttrResult> batch) -> Result<void> {
    std::vector<std::string> drvs, outputs;
    for (const auto& a : batch) {
      if (!a.ok()) continue;
      drvs.push_back(a.drv_path);
      for (const auto& [_, p] : a.outputs) {
        if (!p.empty()) outputs.push_back(p);
      }
    }
    // Closures read for earlier batches are not read again.
    std::vector<std::string> unknown;
    for (const auto& d : drvs) {
      if (!graph.count(d)) unknown.push_back(d);
    }
    auto more = ports_.nix.derivation_graph(unknown);
    if (!more) return fail(*(query_error = more.error()));
    graph.merge(*more);
    auto invalid = ports_.nix.invalid_paths(outputs);
    if (!invalid) return fail(*(query_error = invalid.error()));
    StoreFacts facts;
    facts.invalid.insert(invalid->begin(), invalid->end());
    if (!facts.invalid.empty()) facts.cached = cached_outputs(ports_.nix, cfg_.caches, facts.invalid, warnings);
    if (cache_failures && !drvs.empty()) {
      auto failed = ports_.state.failed_builds(drvs);
      if (!failed) return fail(*(store_error = failed.error()));
      facts.failed = std::move(*failed);
    }
    auto jobs = plan_jobs(eval_id_, batch, graph, facts, builders, &index);
    auto t = ports_.state.add_jobs(eval_id_, jobs, ports_.clock.now_ms(), /*complete=*/false);
    if (!t) {
      cancelled = t.error().code == ErrorCode::kRejected;
      return fail(*(store_error = t.error()));
    }
    if (auto r = publish_batch(eval, jobs, *t); !r) return fail(*(store_error = r.error()));
    ++o.batches;
    o.ready += static_cast<int>(t->ready.size());
    for (const auto& j : jobs) {
      eval_errors += j.state == JobState::kEvalFailed;
      o.skipped += j.state == JobState::kSkipped;
    }
    return {};
  };

  std::vector<std::string> missing;  // systems without <attribute>.<system>
  std::optional<std::string> set_failure;
  for (const auto& system : cfg_.systems) {
    nix::EvalRequest req{flake_ref, repo_cfg.attribute, cfg_.show_trace, cfg_.eval_timeout};
    req.attr_path.push_back(system);
    req.attr_timeout = cfg_.attr_timeout;
    req.force_recurse = cfg_.force_recurse;
    req.on_attrs = add_batch;
    auto r = ports_.nix.eval_attrs(req);
    if (!r) {
      if (cancelled) {
        // Whoever cancelled it has published its end.
        auto c = outcome("cancelled");
        c.disposition = bus::Disposition::ack();
        return c;
      }
      if (store_error) return retry(*store_error);
      if (query_error) return infrastructure("cannot query the store", *query_error);
      if (r.error().code == ErrorCode::kTransient) return infrastructure("cannot evaluate", r.error());
      // With several systems, a flake may leave some out; any other error
      // (syntax, lock file, timeout, ...) means it cannot be evaluated.
      if (cfg_.systems.size() > 1 && missing_attribute_set(r.error().message)) {
        missing.push_back(r.error().message);
        continue;
      }
      set_failure = r.error().message;
      break;
    }
    for (const auto& w : r->warnings) {
      if (std::find(warnings.begin(), warnings.end(), w) == warnings.end()) warnings.push_back(w);
    }
  }
  if (!set_failure && !missing.empty() && missing.size() == cfg_.systems.size()) set_failure = missing.front();
  o.warnings = warnings;
  if (!warnings.empty()) {
    if (auto r = ports_.state.add_eval_warnings(eval_id_, warnings); !r) return retry(r.error());
  }
  if (set_failure) {
    if (o.batches == 0) return fail_eval(*set_failure);
    // Jobs of another system were recorded already: their queued builds
    // are dropped (running ones stopped) and the eval ends failed with
    // this failure, as stored: a crash before the status is posted is
    // finished by the replay.
    if (auto r = cancel(eval_id_, *set_failure, kFailedAfterBatches); !r) return retry(r.error());
    auto f = outcome("eval_failed");
    f.error = *set_failure;
    f.disposition = bus::Disposition::ack();
    return f;
  }

  // The job set is complete: the eval moves to building, or ends here if
  // every job already has.
  auto t = ports_.state.add_jobs(eval_id_, {}, ports_.clock.now_ms(), /*complete=*/true);
  if (!t && t.error().code == ErrorCode::kRejected) {
    auto c = outcome("cancelled");
    c.disposition = bus::Disposition::ack();
    return c;
  }
  if (!t) return retry(t.error());
  // The eval's identity and warnings; its counters and end come from `t`.
  auto done = load();
  if (!done) return retry(done.error());
  if (!done->has_value()) return retry(Error::transient("eval " + eval_id_ + " vanished"));
  const auto& e = **done;
  o.jobs = t->tally.jobs_total;
  o.eval_errors = eval_errors;
  const auto desc = describe_jobs(t->tally.jobs_total, eval_errors, e.warnings.size());
  if (auto r = pipeline::publish_status(ports_.bus, pipeline::eval_status(e, msg::StatusState::kSuccess, desc, e.created_ms * 1000 + 1, links_));
      !r) {
    return retry(r.error());
  }
  if (t->eval_finished) {
    if (auto r = pipeline::publish_eval_finished(ports_.bus, e, t->eval_state, t->tally); !r) return retry(r.error());
  }
  o.disposition = bus::Disposition::ack();
  return o;
}

Result<void> Handler::publish_batch(const state::EvalRecord& eval, const std::vector<state::JobSpec>& jobs,
                                    const state::Transition& t) {
  // What the store holds decides, not what this evaluation found: a job
  // recorded queued by an earlier delivery stays queued (and is built)
  // even if its outputs are valid by now.
  std::set<std::string> ended;
  for (const auto& j : t.ended) ended.insert(j.id);
  for (const auto& j : jobs) {
    if (ended.count(j.id)) continue;  // published with the transition
    state::JobRecord queued;
    queued.id = j.id;
    queued.eval_id = eval_id_;
    queued.attr = j.attr;
    queued.drv_path = j.drv_path;
    queued.system = j.system;
    queued.outputs = j.outputs;
    queued.state = JobState::kQueued;
    queued.cache_status = j.cache_status;
    queued.name = j.name;
    if (auto r = pipeline::publish_status(ports_.bus, pipeline::job_status(eval, queued, links_)); !r) return r;
  }
  state::Transition without_end = t;
  without_end.eval_finished = false;
  return pipeline::publish_transition({ports_.bus, ports_.state}, eval, without_end, links_);
}

EvalOutcome Handler::await_approval(const std::string& why) {
  // Nothing runs; the forge shows why, and an approval evaluates this very
  // change.
  if (auto r = park_change(ports_.state, pull_request_key(change_), change_); !r) return retry(r.error());
  state::EvalRecord shown;
  shown.id = eval_id_;
  shown.repo = change_.repo;
  shown.rev = change_.rev;
  const auto text = "Waiting for approval: " + why + ". A maintainer approves it with a \"" + std::string(msg::kApproveCommand) +
                    "\" comment" + (cfg_.trust.label.empty() ? "" : " or the label " + cfg_.trust.label) + ".";
  auto status = pipeline::eval_status(shown, msg::StatusState::kPending, text, received_ms(ports_.clock.now_ms()) * 1000, links_);
  if (auto r = pipeline::publish_status(ports_.bus, status); !r) return retry(r.error());
  auto o = outcome("awaiting_approval");
  o.error = why;
  o.disposition = bus::Disposition::ack();
  return o;
}

EvalOutcome Handler::run() {
  if (change_.kind == msg::kPullRequestClosed) return close_pull_request();
  if (change_.kind == msg::kPullRequest) {
    // A label or an edit that changes neither head nor base needs no new
    // eval when the pull request's live one is of this head and base.
    auto head = repeat_ ? Result<std::string>(std::string()) : ports_.state.ref_head(ref_key());
    if (!head) return retry(head.error());
    if (!head->empty() && *head != eval_id_) {
      auto live = ports_.state.get_eval(*head);
      if (!live) return retry(live.error());
      if (live->has_value() && (**live).rev == change_.rev && !(**live).cancelled && (**live).state != state::EvalState::kCancelled) {
        auto before = msg::decode_change_event((**live).change);
        if (before && before->pull_request.base_branch == change_.pull_request.base_branch) {
          auto o = outcome("ignored");
          o.error = "eval " + *head + " is of this head already";
          o.disposition = bus::Disposition::ack();
          return o;
        }
      }
    }
    auto trust = decide_trust(change_, cfg_.trust, ports_.permissions ? ports_.permissions(change_.repo.forge) : nullptr, ports_.state);
    if (!trust) return retry(trust.error());
    if (!trust->trusted) return await_approval(trust->why);
  }
  if (!change_.branch.empty()) {
    // Only the default branch and the branches the rules select build.
    auto policy = repo::branch_policy(cfg_.branch_rules, change_.branch, change_.repo.default_branch);
    if (!policy.build) {
      auto o = outcome("ignored");
      o.error = "branch " + change_.branch + " is not built: " + policy.why;
      o.disposition = bus::Disposition::ack();
      return o;
    }
  }
  state::EvalRecord rec;
  rec.id = eval_id_;
  rec.change_id = change_.id;
  rec.repo = change_.repo;
  rec.ref = change_.ref;
  rec.branch = change_.branch;
  rec.tag = change_.tag;
  rec.rev = change_.rev;
  rec.change = msg::encode(change_);
  rec.created_ms = ports_.clock.now_ms();
  if (auto created = ports_.state.create_eval(rec); !created) return retry(created.error());
  // The stored record, not ours: a redelivery keeps the first creation time.
  auto loaded = load();
  if (!loaded) return retry(loaded.error());
  if (!loaded->has_value()) return retry(Error::transient("eval " + eval_id_ + " vanished"));
  const state::EvalRecord eval = **loaded;
  // Listed for the web UI (again on a redelivery: filing is idempotent).
  if (ports_.catalog) {
    if (auto r = ports_.catalog->file_eval(state::filing_of(eval_id_, change_, eval.created_ms)); !r) return retry(r.error());
  }
  if (eval.state != state::EvalState::kEvaluating) return replay(eval);
  return evaluate(eval);
}

}  // namespace

std::string mirror_dir(const std::string& work_dir, const msg::Repo& repo) {
  return work_dir + "/repos/" + text::safe_file_name(repo.forge) + "/" + text::safe_file_name(repo.owner) + "/" +
         text::safe_file_name(repo.name) + ".git";
}

std::string Builders::why_not(const std::string& system, const std::vector<std::string>& needed) const {
  if (systems.empty() && announced.empty()) return {};
  auto offers = [&](const auto& have) {
    return std::all_of(needed.begin(), needed.end(), [&](const auto& f) { return std::find(have.begin(), have.end(), f) != have.end(); });
  };
  if (systems.count(system) && offers(features)) return {};
  bool system_served = systems.count(system) > 0;
  for (const auto& b : announced) {
    if (std::find(b.systems.begin(), b.systems.end(), system) == b.systems.end()) continue;
    system_served = true;
    if (offers(b.features)) return {};
  }
  if (!system_served) return "No builder for system " + system;
  std::string list;
  for (const auto& f : needed) list += (list.empty() ? "" : ", ") + f;
  return "No builder for " + system + " offers the system features it requires (" + list + ")";
}

std::vector<state::JobSpec> plan_jobs(const std::string& eval_id, const std::vector<nix::AttrResult>& attrs,
                                      const nix::DerivationGraph& graph, const StoreFacts& store, const Builders& builders,
                                      JobIndex* earlier) {
  std::vector<state::JobSpec> jobs;
  JobIndex local;
  JobIndex& jobs_by_drv = earlier ? *earlier : local;
  for (const auto& a : attrs) {
    state::JobSpec j;
    j.attr = nix::render_attr_path(a.path);
    j.id = state::job_id_for(eval_id, j.attr);
    // The derivation's own system decides where it builds; an attribute
    // that failed to evaluate belongs to the system it was listed under.
    j.system = !a.system.empty() ? a.system : a.path.size() >= 2 ? a.path[a.path.size() - 2] : "";
    if (!a.ok()) {
      j.state = JobState::kEvalFailed;
      j.error = a.error;
    } else {
      j.drv_path = a.drv_path;
      j.name = a.name;
      j.outputs = a.outputs;
      bool all_valid = !a.outputs.empty(), all_cached = !a.outputs.empty();
      for (const auto& [_, p] : a.outputs) {
        all_valid = all_valid && !p.empty() && !store.invalid.count(p);
        all_cached = all_cached && !p.empty() && (!store.invalid.count(p) || store.cached.count(p));
      }
      j.state = all_valid ? JobState::kSkipped : JobState::kQueued;
      j.cache_status = all_valid ? "local" : all_cached ? "cached" : "notBuilt";
      if (auto node = graph.find(a.drv_path); node != graph.end()) j.features = node->second.required_features;
      if (auto why = builders.why_not(j.system, j.features); j.state == JobState::kQueued && !why.empty()) {
        j.state = JobState::kUnsupportedSystem;
        j.error = why;
      }
      if (auto f = store.failed.find(a.drv_path); j.state == JobState::kQueued && f != store.failed.end()) {
        const auto& first = f->second;
        j.state = JobState::kCachedFailure;
        j.error = "failed before as " + first.attr + " in eval " + first.eval_id + " (job " + first.job_id + ")" +
                  (first.error.empty() ? std::string() : ": " + first.error.substr(0, first.error.find('\n')));
      }
      auto& ids = jobs_by_drv[a.drv_path];
      if (std::find(ids.begin(), ids.end(), j.id) == ids.end()) ids.push_back(j.id);
    }
    jobs.push_back(std::move(j));
  }
  for (auto& j : jobs) {
    if (j.drv_path.empty()) continue;
    std::set<std::string> seen{j.drv_path};
    std::set<std::string> deps;
    std::vector<std::string> stack;
    if (auto it = graph.find(j.drv_path); it != graph.end()) stack = it->second.inputs;
    while (!stack.empty()) {
      auto d = stack.back();
      stack.pop_back();
      if (!seen.insert(d).second) continue;
      if (auto hit = jobs_by_drv.find(d); hit != jobs_by_drv.end()) {
        deps.insert(hit->second.begin(), hit->second.end());
        continue;  // the nearest job is enough: its own deps order the rest
      }
      if (auto it = graph.find(d); it != graph.end()) stack.insert(stack.end(), it->second.inputs.begin(), it->second.inputs.end());
    }
    deps.erase(j.id);
    j.deps.assign(deps.begin(), deps.end());
  }
  return jobs;
}

namespace {

bool failed_build(JobState s) { return s == JobState::kFailed || s == JobState::kCachedFailure; }

// The eval a re-run means: the job's, the named one, or the one its ref
// holds when that is of the re-run commit. nullopt: nothing to re-run.
Result<std::optional<state::EvalRecord>> rerun_target(const msg::ChangeEvent& c, state::StateStore& store) {
  std::string eval_id = c.rerun.eval_id;
  if (!c.rerun.job_id.empty()) {
    auto job = store.get_job(c.rerun.job_id);
    if (!job) return fail(job.error());
    if (!job->has_value()) return std::optional<state::EvalRecord>();
    eval_id = (**job).eval_id;
  }
  if (eval_id.empty() && !c.ref.empty()) {
    auto head = store.ref_head(c.repo.forge + "/" + c.repo.owner + "/" + c.repo.name + "/" + c.ref);
    if (!head) return fail(head.error());
    eval_id = *head;
  }
  if (eval_id.empty()) return std::optional<state::EvalRecord>();
  auto eval = store.get_eval(eval_id);
  if (!eval) return fail(eval.error());
  // Only an eval of this repository and commit: the forge says what it
  // re-runs, the stored change says how it was evaluated.
  if (!eval->has_value() || (**eval).rev != c.rev || !((**eval).repo.forge == c.repo.forge && (**eval).repo.owner == c.repo.owner &&
                                                       (**eval).repo.name == c.repo.name)) {
    return std::optional<state::EvalRecord>();
  }
  return eval;
}

// A re-run: the failures it names leave the failed-build cache, and the
// change that made the eval is evaluated again as a new change (so a
// redelivery of the re-run replays, and the new eval supersedes the old).
EvalOutcome rerun(const msg::ChangeEvent& change, std::uint64_t num_delivered, EvalPorts ports, const EvaluatorConfig& config) {
  auto nothing = [&](const std::string& why) {
    EvalOutcome o;
    o.eval_id = state::eval_id_for_change(change.id);
    o.result = "ignored";
    o.error = why;
    o.disposition = bus::Disposition::ack();
    return o;
  };
  auto retry = [&](const Error& e) {
    EvalOutcome o;
    o.eval_id = state::eval_id_for_change(change.id);
    o.result = "retry";
    o.error = e.message;
    o.disposition = bus::retry_later(e, num_delivered);
    return o;
  };
  auto target = rerun_target(change, ports.state);
  if (!target) return retry(target.error());
  if (!target->has_value()) return nothing("nothing of " + change.rev.substr(0, 12) + " to re-run");
  const auto& old = **target;
  auto original = msg::decode_change_event(old.change);
  if (!original) return nothing("eval " + old.id + " does not keep the change that made it");

  auto jobs = ports.state.list_jobs(old.id);
  if (!jobs) return retry(jobs.error());
  std::vector<std::string> drvs;
  for (const auto& j : *jobs) {
    const bool named = change.rerun.job_id.empty() || j.id == change.rerun.job_id;
    // A job that ended dependency_failed is re-run by re-running what it
    // waited for: every failure of its eval.
    const bool named_waits = !change.rerun.job_id.empty() && std::any_of(jobs->begin(), jobs->end(), [&](const state::JobRecord& x) {
      return x.id == change.rerun.job_id && x.state == JobState::kDependencyFailed;
    });
    if ((named || named_waits) && failed_build(j.state) && !j.drv_path.empty()) drvs.push_back(j.drv_path);
  }
  for (const auto& d : drvs) {
    if (auto r = ports.state.clear_failed_build(d); !r) return retry(r.error());
  }
  msg::ChangeEvent again = *original;
  again.id = change.id;
  again.received_at_ms = change.received_at_ms;
  again.sender = change.sender.empty() ? original->sender : change.sender;
  // The new eval records that it is a re-run, of what.
  again.rerun = {change.rerun.job_id, change.rerun.eval_id.empty() ? old.id : change.rerun.eval_id};
  return Handler(again, num_delivered, ports, config, /*repeat=*/true).run();
}

}  // namespace

// An approval: recorded if it counts, and the change that waited for it
// is evaluated as a new change of the approval's id (a redelivery replays).
EvalOutcome approve(const msg::ChangeEvent& change, std::uint64_t num_delivered, EvalPorts ports, const EvaluatorConfig& config) {
  EvalOutcome o;
  o.eval_id = state::eval_id_for_change(change.id);
  o.disposition = bus::Disposition::ack();
  auto counts = approval_counts(change, ports.permissions ? ports.permissions(change.repo.forge) : nullptr);
  if (!counts) {
    o.result = "retry";
    o.error = counts.error().message;
    o.disposition = bus::retry_later(counts.error(), num_delivered);
    return o;
  }
  if (!*counts) {
    o.result = "ignored";
    o.error = change.approval.by + " may not approve pull requests of " + change.repo.full_name();
    return o;
  }
  const auto key = pull_request_key(change);
  auto parked = parked_change(ports.state, key);
  if (auto r = record_approval(ports.state, key, change.approval.by); !r || !parked) {
    o.result = "retry";
    o.error = !r ? r.error().message : parked.error().message;
    o.disposition = bus::retry_later(!r ? r.error() : parked.error(), num_delivered);
    return o;
  }
  if (!parked->has_value()) {
    o.result = "approved";
    o.error = "approved by " + change.approval.by + "; nothing was waiting";
    return o;
  }
  msg::ChangeEvent again = **parked;
  again.id = change.id;
  again.received_at_ms = change.received_at_ms;
  return Handler(again, num_delivered, ports, config, /*repeat=*/true).run();
}

EvalOutcome handle_change(const msg::ChangeEvent& change, std::uint64_t num_delivered, EvalPorts ports,
                          const EvaluatorConfig& config) {
  // Project discovery's registry: a repository it did not find is no
  // project, and nothing of it runs (unknown: discovery does not cover
  // this forge, so nothing is gated).
  auto project = ports.state.is_project(change.repo.forge, change.repo.full_name());
  if (!project || (*project && !**project)) {
    EvalOutcome o;
    o.eval_id = state::eval_id_for_change(change.id);
    o.result = project ? "ignored" : "retry";
    o.error = project ? change.repo.full_name() + " is not a project (discovery)" : project.error().message;
    o.disposition = project ? bus::Disposition::ack() : bus::retry_later(project.error(), num_delivered);
    return o;
  }
  if (change.kind == msg::kRerun) return rerun(change, num_delivered, ports, config);
  if (change.kind == msg::kApprove) return approve(change, num_delivered, ports, config);
  return Handler(change, num_delivered, ports, config).run();
}

}  // namespace flurry::evaluator
