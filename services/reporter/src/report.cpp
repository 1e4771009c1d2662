#include "report.hpp"

#include <charconv>

#include "flurry/core/crypto.hpp"
#include "flurry/pipeline/publish.hpp"

namespace flurry::reporter {
namespace {

constexpr int kRememberSeconds = 14 * 24 * 3600;

bool is_job_context(const msg::StatusEvent& s) { return !s.job_id.empty(); }

std::int64_t to_int(const std::string& s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

class Reporter {
 public:
  Reporter(std::uint64_t delivered, ReportPorts ports, const ReportConfig& cfg) : delivered_(delivered), ports_(ports), cfg_(cfg) {}

  ReportOutcome handle(const msg::StatusEvent& status) {
    forge::StatusPoster* poster = ports_.posters ? ports_.posters(status.repo.forge) : nullptr;
    if (!poster) return done("skipped", "no forge client for " + status.repo.forge);
    if (!is_job_context(status) || status.eval_id.empty()) return post(*poster, status);

    auto eval = ports_.state.get_eval(status.eval_id);
    if (!eval) return retry(eval.error());
    if (!eval->has_value() || (**eval).jobs_total <= cfg_.max_job_statuses) return post(*poster, status);

    // A big eval: its progress in one context, its failures on their own.
    auto combined = report_combined(*poster, **eval, status);
    if (combined.result == "retry") return combined;
    auto seen = ports_.state.get_forge_ref(posted_key(status));
    if (!seen) return retry(seen.error());
    if (seen->has_value()) return post(*poster, status);  // posted before: end it too
    if (status.state == msg::StatusState::kFailure) {
      auto failures = count_failure(status);
      if (!failures) return retry(failures.error());
      if (*failures) return post(*poster, status);
    }
    return done("combined", "in " + std::string(kCombinedContext));
  }

 private:
  ReportOutcome done(std::string result, std::string detail = "") { return acked(std::move(result), std::move(detail)); }
  ReportOutcome retry(const Error& e) { return retried(e, delivered_); }
  static std::string posted_key(const msg::StatusEvent& s) { return "posted\n" + context_key(s); }

  // Posts in order per context: an older status never overwrites a newer
  // one. A forge that refuses the post (a 4xx that waiting will not
  // change: too long, invalid) gets it once more reduced (short
  // description, no link, no log), so that the context still reaches its
  // state; what it refuses even then is recorded as refused.
  ReportOutcome post(forge::StatusPoster& poster, const msg::StatusEvent& status) {
    auto fresh = ports_.state.advance_status(context_key(status), status.at_us);
    if (!fresh) return retry(fresh.error());
    if (!*fresh) return done("stale", "a newer status for this context was already posted");
    auto r = poster.post(status, forge::Detail::kFull);
    if (r.retry) return retry_post(r);
    if (!r.ok) {
      auto reduced = poster.post(status, forge::Detail::kReduced);
      if (reduced.retry) return retry_post(reduced);
      if (!reduced.ok) {
        auto o = done("refused", r.message + "; reduced, " + reduced.message);
        o.refused_status = r.http_status;
        return o;
      }
      auto o = done("reduced", r.message);
      o.refused_status = r.http_status;
      remember_posted(status);
      return o;
    }
    remember_posted(status);
    return done("posted");
  }
  ReportOutcome retry_post(const forge::PostResult& r) {
    ReportOutcome o = retry(Error::transient(r.message));
    if (r.retry_after) o.disposition.delay = std::chrono::duration_cast<std::chrono::milliseconds>(*r.retry_after);
    return o;
  }
  // Lets a big eval end what it showed; losing it only leaves a pending
  // status where a final one belonged.
  void remember_posted(const msg::StatusEvent& status) {
    if (is_job_context(status)) (void)ports_.state.put_forge_ref(posted_key(status), "1", kRememberSeconds);
  }

  // True while this eval has posted fewer than max_failure_statuses
  // failures (this one counted once, however often it is delivered).
  Result<bool> count_failure(const msg::StatusEvent& s) {
    const auto mine = "failure\n" + context_key(s);
    auto counted = ports_.state.get_forge_ref(mine);
    if (!counted) return fail(counted.error());
    if (counted->has_value()) return **counted == "1";
    const auto count_key = "failures\n" + s.eval_id;
    auto n = ports_.state.get_forge_ref(count_key);
    if (!n) return fail(n.error());
    const auto so_far = n->has_value() ? to_int(**n) : 0;
    const bool show = so_far < cfg_.max_failure_statuses;
    if (show) {
      if (auto r = ports_.state.put_forge_ref(count_key, std::to_string(so_far + 1), kRememberSeconds); !r) return fail(r.error());
    }
    if (auto r = ports_.state.put_forge_ref(mine, show ? "1" : "0", kRememberSeconds); !r) return fail(r.error());
    return show;
  }

  // "flurry/builds": pending with progress at most every combined_interval,
  // then its end once nothing is pending.
  ReportOutcome report_combined(forge::StatusPoster& poster, const state::EvalRecord& eval, const msg::StatusEvent& trigger) {
    const auto now_ms = ports_.clock.now_ms();
    const bool ended = eval.jobs_pending == 0 && eval.state != state::EvalState::kEvaluating;
    const auto last_key = "combined\n" + trigger.repo.forge + "\n" + eval.id;
    auto last = ports_.state.get_forge_ref(last_key);
    if (!last) return retry(last.error());
    if (!ended && last->has_value() && now_ms - to_int(**last) < cfg_.combined_interval.count()) return done("combined");
    const int built = eval.jobs_total - eval.jobs_pending;
    std::string desc = std::to_string(built) + " of " + std::to_string(eval.jobs_total) + " done";
    if (eval.jobs_failed > 0) desc += ", " + std::to_string(eval.jobs_failed) + " not successful";
    const auto state = !ended                ? msg::StatusState::kPending
                       : eval.jobs_failed > 0 ? msg::StatusState::kFailure
                                              : msg::StatusState::kSuccess;
    auto s = pipeline::make_status(eval.id, trigger.repo, trigger.rev, std::string(kCombinedContext), state, desc,
                                   // Its end orders after every progress report.
                                   ended ? std::max<std::int64_t>(eval.finished_ms, now_ms) * 1000 + 5 : now_ms * 1000,
                                   trigger.target_url.empty() ? "" : trigger.target_url.substr(0, trigger.target_url.rfind("/jobs/")));
    auto r = post(poster, s);
    if (r.result == "posted" || r.result == "reduced" || r.result == "stale") {
      if (auto k = ports_.state.put_forge_ref(last_key, std::to_string(now_ms), kRememberSeconds); !k) return retry(k.error());
    }
    return r;
  }

  std::uint64_t delivered_;
  ReportPorts ports_;
  const ReportConfig& cfg_;
};

}  // namespace

std::string context_key(const msg::StatusEvent& s) {
  // Hashed: owner, repo and context are attacker-controlled and unbounded.
  return crypto::sha256_hex(s.repo.forge + "\n" + s.repo.owner + "\n" + s.repo.name + "\n" + s.rev + "\n" + s.context);
}

ReportOutcome handle_status(const msg::StatusEvent& status, std::uint64_t num_delivered, ReportPorts ports, const ReportConfig& cfg) {
  return Reporter(num_delivered, ports, cfg).handle(status);
}

}  // namespace flurry::reporter
