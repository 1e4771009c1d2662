#include "flurry/forge/github_checks.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/forge/github_status.hpp"

namespace flurry::forge {
namespace {

constexpr std::size_t kLogLines = 100;
constexpr std::size_t kTextBytes = 60000;  // GitHub allows 65,535 characters

std::string conclusion_of(const msg::StatusEvent& s) {
  const auto& j = s.job_state;
  if (j == "succeeded" || j == "skipped") return "success";
  if (j == "timed_out") return "timed_out";
  if (j == "cancelled") return "cancelled";
  if (j == "unsupported_system") return "neutral";
  if (!j.empty()) return "failure";
  switch (s.state) {
    case msg::StatusState::kSuccess: return "success";
    case msg::StatusState::kError: return "cancelled";
    default: return "failure";
  }
}

bool failed(const std::string& conclusion) { return conclusion == "failure" || conclusion == "timed_out"; }

}  // namespace

CheckRunFields check_run_fields(const msg::StatusEvent& s, const std::string& log) {
  CheckRunFields f;
  f.external_id = s.job_id.empty() ? "eval:" + s.eval_id : "job:" + s.job_id;
  f.title = s.description.empty() ? s.context : s.description;
  f.summary = s.description;
  if (!s.target_url.empty()) f.summary += (f.summary.empty() ? "" : "\n\n") + std::string("[Details and the full log](") + s.target_url + ")";
  if (s.state == msg::StatusState::kPending) {
    f.status = "queued";
    return f;
  }
  f.status = "completed";
  f.conclusion = conclusion_of(s);
  if (failed(f.conclusion) && !log.empty()) {
    auto tail = text::tail_lines(log, kLogLines);
    if (tail.size() > kTextBytes) tail = tail.substr(tail.size() - kTextBytes);
    // A fence inside the log must not end ours.
    std::string safe;
    for (std::size_t i = 0; i < tail.size(); ++i) {
      if (tail.compare(i, 3, "```") == 0) {
        safe += "`\u200b``";
        i += 2;
      } else {
        safe += tail[i];
      }
    }
    f.text = "Last lines of the build log:\n\n```\n" + safe + (safe.empty() || safe.back() == '\n' ? "" : "\n") + "```\n";
  }
  return f;
}

GitHubChecksClient::GitHubChecksClient(http::Client& client, std::string api_url, GitHubTokens& tokens, Clock& clock, CheckRunIds& ids,
                                       JobLogs& logs)
    : client_(client), api_url_(std::move(api_url)), tokens_(tokens), clock_(clock), ids_(ids), logs_(logs) {}

PostResult GitHubChecksClient::post(const msg::StatusEvent& s) {
  auto token = tokens_.token_for(s.repo.owner, s.repo.name);
  if (!token) return not_sent(token.error(), "no GitHub token");
  const std::string key = "check-run\n" + s.repo.owner + "\n" + s.repo.name + "\n" + s.rev + "\n" + s.context;
  auto known = ids_.find(key);
  if (!known) return not_sent(known.error(), "cannot read the check run id");

  std::string log;
  if (s.state != msg::StatusState::kPending && !s.job_id.empty() && s.state != msg::StatusState::kSuccess) {
    if (auto l = logs_.log(s.job_id)) log = *l;  // without the log the run still says what happened
  }
  const auto f = check_run_fields(s, log);
  nlohmann::json body = {{"name", s.context},
                         {"head_sha", s.rev},
                         {"status", f.status},
                         {"external_id", f.external_id},
                         {"output", {{"title", text::truncate_utf8(f.title, 1000)}, {"summary", f.summary}, {"text", f.text}}}};
  if (!f.conclusion.empty()) body["conclusion"] = f.conclusion;
  if (text::starts_with(s.target_url, "https://") || text::starts_with(s.target_url, "http://")) body["details_url"] = s.target_url;
  const auto payload = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto base = "/repos/" + path_segment(s.repo.owner) + "/" + path_segment(s.repo.name) + "/check-runs";

  if (known->has_value()) {
    auto patched = client_.send({.method = "PATCH",
                                 .url = api(api_url_, base + "/" + path_segment(**known)),
                                 .headers = github_headers(*token),
                                 .body = payload,
                                 .timeout = std::chrono::seconds(30)});
    auto r = read_answer(patched, "GitHub", clock_.now_ms() / 1000);
    if (r.http_status != 404) return r;  // gone (deleted with its suite): made anew below
  }
  auto created = client_.send({.method = "POST", .url = api(api_url_, base), .headers = github_headers(*token), .body = payload,
                               .timeout = std::chrono::seconds(30)});
  auto r = read_answer(created, "GitHub", clock_.now_ms() / 1000);
  if (!r.ok) return r;
  auto j = nlohmann::json::parse(created->body, nullptr, false);
  if (j.is_object() && j.contains("id") && j["id"].is_number_integer()) {
    // Losing it only means the next state makes a new run of the same name,
    // which GitHub shows in its place.
    (void)ids_.remember(key, std::to_string(j["id"].get<std::int64_t>()));
  }
  return r;
}

}  // namespace flurry::forge
