// GitHub's webhooks: X-Hub-Signature-256, X-GitHub-Event, X-GitHub-Delivery.
#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/forge/github_checks.hpp"
#include "payload.hpp"
#include "webhook.hpp"

namespace flurry::ingest {
namespace {

// The repository an event is about (for pull requests: the base).
msg::Repo read_repo(const Payload& repository) {
  msg::Repo r;
  r.name = repository.str("name");
  r.clone_url = repository.str("clone_url");
  r.html_url = repository.opt_str("html_url");
  r.default_branch = repository.str("default_branch");
  if (auto owner = repository.opt_obj("owner")) r.owner = owner->opt_str("login", owner->opt_str("name"));
  return r;
}

// The App installation a webhook delivered to a GitHub App names (its
// tokens then need no look-up); 0 when it names none.
std::int64_t installation_of(const Payload& j) {
  auto installation = j.opt_obj("installation");
  return installation ? installation->integer("id") : 0;
}

std::string login_of(const Payload& p, const char* key) {
  auto user = p.opt_obj(key);
  return user ? user->opt_str("login") : "";
}

Result<Parsed> parse_push(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto ref = j.str("ref");
  const auto after = j.str("after");
  auto repo = read_repo(j.obj("repository"));
  repo.installation_id = installation_of(j);
  if (!j.error().empty()) return fail(j.rejected());
  if (repo.owner.empty()) return fail(Error::rejected("missing or mistyped field repository.owner.login (a string)"));
  return push_change("github", delivery, now_ms, std::move(repo), ref, j.opt_str("before"), after, j.opt_bool("deleted"),
                     login_of(j, "sender"));
}

Result<Parsed> parse_pull_request(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto action = j.str("action");
  const auto pr = j.obj("pull_request");
  const auto number = j.integer("number");
  const auto head = pr.obj("head");
  const auto base = pr.obj("base");
  const auto head_sha = head.str("sha");
  auto repo = read_repo(j.obj("repository"));
  repo.installation_id = installation_of(j);
  msg::PullRequest p;
  p.number = static_cast<int>(number);
  p.base_branch = base.str("ref");
  p.base_rev = base.opt_str("sha");
  p.head_branch = head.str("ref");
  // A deleted fork leaves head.repo null.
  auto head_repo = head.opt_obj("repo");
  auto base_repo = base.opt_obj("repo");
  p.head_clone_url = head_repo ? head_repo->opt_str("clone_url") : "";
  const auto head_name = head_repo ? head_repo->opt_str("full_name") : "";
  const auto base_name = base_repo ? base_repo->opt_str("full_name") : "";
  p.from_fork = !head_repo || head_name != base_name;
  p.author = login_of(pr, "user");
  p.author_association = pr.opt_str("author_association");
  p.title = pr.opt_str("title");
  p.labels = pr.names_in("labels", "name");
  if (!j.error().empty()) return fail(j.rejected());
  if (repo.owner.empty()) return fail(Error::rejected("missing or mistyped field repository.owner.login (a string)"));
  if (number <= 0 || number > 1'000'000'000) return fail(Error::rejected("field number is not a pull request number"));

  std::string_view kind;
  // A label may be the trust label: the evaluator decides (and makes no
  // new eval of a head it evaluated).
  if (action == "opened" || action == "reopened" || action == "synchronize" || action == "ready_for_review" || action == "labeled") {
    kind = msg::kPullRequest;
  } else if (action == "edited" && j.opt_obj("changes") && j.obj("changes").has("base")) {
    kind = msg::kPullRequest;  // retargeted: the merge result changed
  } else if (action == "closed") {
    kind = msg::kPullRequestClosed;
  } else {
    return Parsed::ignored("pull_request action " + text::truncate_utf8(action, 40) + " needs no evaluation");
  }
  return pull_request_change("github", delivery, now_ms, std::move(repo), kind, "refs/pull/" + std::to_string(number) + "/head",
                             head_sha, std::move(p), login_of(j, "sender"));
}

// "/flurry approve" commented on a pull request.
Result<Parsed> parse_comment(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto issue = j.obj("issue");
  const auto comment = j.obj("comment");
  Comment c{j.str("action"), issue.has("pull_request"), comment.opt_str("body"), issue.integer("number"), login_of(comment, "user"),
            comment.opt_str("author_association"), ""};
  auto repo = read_repo(j.obj("repository"));
  repo.installation_id = installation_of(j);
  if (!j.error().empty()) return fail(j.rejected());
  c.head_ref = "refs/pull/" + std::to_string(c.number) + "/head";
  return comment_change("github", delivery, now_ms, std::move(repo), c);
}

// The Re-run buttons: check_run rerequested names one run (its external_id
// says which job or eval), check_suite rerequested the whole commit.
Result<Parsed> parse_rerun(const std::string& event, const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto action = j.str("action");
  if (!j.error().empty()) return fail(j.rejected());
  if (action != "rerequested") return Parsed::ignored(event + " action " + text::truncate_utf8(action, 40) + " needs nothing");
  const auto run = event == "check_run" ? std::optional<Payload>(j.obj("check_run")) : std::nullopt;
  const auto suite = run ? run->obj("check_suite") : j.obj("check_suite");
  const auto head_sha = run ? run->str("head_sha") : suite.str("head_sha");
  const auto external_id = run ? run->opt_str("external_id") : "";
  const auto head_branch = suite.opt_str("head_branch");
  auto repo = read_repo(j.obj("repository"));
  repo.installation_id = installation_of(j);
  if (!j.error().empty()) return fail(j.rejected());
  if (repo.owner.empty()) return fail(Error::rejected("missing or mistyped field repository.owner.login (a string)"));
  if (!text::is_sha1_hex(head_sha)) return fail(Error::rejected("the re-run commit is not a 40-hex commit id"));

  msg::ChangeEvent c;
  c.id = "github:" + delivery;
  c.kind = msg::kRerun;
  repo.forge = "github";
  c.repo = std::move(repo);
  c.rev = text::to_lower(head_sha);
  c.sender = login_of(j, "sender");
  c.received_at_ms = now_ms;
  // A pull request's suite: its first pull request names the ref.
  std::int64_t pr_number = 0;
  if (auto first = suite.first_in("pull_requests")) pr_number = first->integer("number");
  if (pr_number > 0) {
    c.ref = "refs/pull/" + std::to_string(pr_number) + "/head";
  } else if (!head_branch.empty()) {
    c.ref = "refs/heads/" + head_branch;
    c.branch = head_branch;
  }
  if (auto target = forge::parse_external_id(external_id)) {
    (target->first == "job" ? c.rerun.job_id : c.rerun.eval_id) = target->second;
  } else if (run) {
    return Parsed::ignored("check run " + text::truncate_utf8(run->opt_str("name"), 80) + " is not one of Flurry's");
  }
  if (!j.error().empty()) return fail(j.rejected());
  return Parsed::change_of(std::move(c));
}

}  // namespace

bool github_signature_valid(const std::string& secret, const std::string& body, const std::string& header) {
  const std::string prefix = "sha256=";
  if (header.size() != prefix.size() + 64 || header.compare(0, prefix.size(), prefix) != 0) return false;
  auto expected = crypto::hmac_sha256_hex(secret, body);
  return crypto::constant_time_equal(text::to_lower(header.substr(prefix.size())), expected);
}

Result<Parsed> parse_github_event(const std::string& event, const std::string& body, const std::string& delivery,
                                  std::int64_t now_ms) {
  if (event == "ping") return Parsed::ping();
  const bool installation = event == "installation" || event == "installation_repositories";
  if (event != "push" && event != "pull_request" && event != "check_run" && event != "check_suite" && event != "issue_comment" &&
      !installation) {
    return Parsed::ignored("event " + event + " is not handled");
  }
  auto j = Payload::parse(body);
  if (!j) return fail(j.error());
  // The app was installed, removed, suspended, or given other
  // repositories: which repositories are projects may have changed.
  if (installation) {
    const auto action = j->opt_str("action");
    if (!j->error().empty()) return fail(j->rejected());
    return Parsed::refresh(event + " " + text::truncate_utf8(action, 40));
  }
  if (event == "push") return whole(*j, parse_push(*j, delivery, now_ms));
  if (event == "pull_request") return whole(*j, parse_pull_request(*j, delivery, now_ms));
  if (event == "issue_comment") return whole(*j, parse_comment(*j, delivery, now_ms));
  return whole(*j, parse_rerun(event, *j, delivery, now_ms));
}

const Dialect& github_dialect() {
  static const Dialect kDialect{
      .forge = "github",
      .event_headers = {"x-github-event"},
      .delivery_headers = {"x-github-delivery"},
      .delivery_from_body = false,
      .authentic = [](const std::string& secret,
                      const http::Request& req) { return github_signature_valid(secret, req.body, req.header("x-hub-signature-256")); },
      .parse = parse_github_event,
  };
  return kDialect;
}

}  // namespace flurry::ingest
