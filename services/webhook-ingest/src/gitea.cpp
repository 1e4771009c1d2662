// Gitea's and Forgejo's webhooks: X-Gitea-Signature (Forgejo also sends
// X-Forgejo-Signature), X-Gitea-Event, X-Gitea-Delivery. Payloads follow
// GitHub's shapes with Gitea's own action names ("synchronized").
#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "payload.hpp"
#include "webhook.hpp"

namespace flurry::ingest {
namespace {

std::string login_of(const Payload& p, const char* key) {
  auto user = p.opt_obj(key);
  return user ? user->opt_str("login", user->opt_str("username")) : "";
}

msg::Repo read_repo(const Payload& repository) {
  msg::Repo r;
  r.name = repository.str("name");
  r.clone_url = repository.str("clone_url");
  r.html_url = repository.opt_str("html_url");
  r.default_branch = repository.opt_str("default_branch");
  r.owner = login_of(repository, "owner");
  return r;
}

Result<Parsed> parse_push(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto ref = j.str("ref");
  const auto after = j.str("after");
  auto repo = read_repo(j.obj("repository"));
  if (!j.error().empty()) return fail(j.rejected());
  if (repo.owner.empty()) return fail(Error::rejected("missing or mistyped field repository.owner.login (a string)"));
  return push_change("gitea", delivery, now_ms, std::move(repo), ref, j.opt_str("before"), after, false, login_of(j, "sender"));
}

Result<Parsed> parse_pull_request(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto action = j.str("action");
  const auto number = j.integer("number");
  const auto pr = j.obj("pull_request");
  const auto head = pr.obj("head");
  const auto base = pr.obj("base");
  const auto head_sha = head.str("sha");
  auto repo = read_repo(j.obj("repository"));
  msg::PullRequest p;
  p.number = static_cast<int>(number);
  p.base_branch = base.str("ref");
  p.base_rev = base.opt_str("sha");
  p.head_branch = head.opt_str("ref");
  auto head_repo = head.opt_obj("repo");
  auto base_repo = base.opt_obj("repo");
  p.head_clone_url = head_repo ? head_repo->opt_str("clone_url") : "";
  p.from_fork = !head_repo || !base_repo || head_repo->opt_str("full_name") != base_repo->opt_str("full_name");
  p.author = login_of(pr, "user");
  p.title = pr.opt_str("title");
  p.labels = pr.names_in("labels", "name");
  if (!j.error().empty()) return fail(j.rejected());
  if (repo.owner.empty()) return fail(Error::rejected("missing or mistyped field repository.owner.login (a string)"));
  if (number <= 0 || number > 1'000'000'000) return fail(Error::rejected("field number is not a pull request number"));

  std::string_view kind;
  if (action == "opened" || action == "reopened" || action == "synchronized" || action == "label_updated") {
    kind = msg::kPullRequest;
  } else if (action == "closed") {
    kind = msg::kPullRequestClosed;
  } else {
    return Parsed::ignored("pull_request action " + text::truncate_utf8(action, 40) + " needs no evaluation");
  }
  return pull_request_change("gitea", delivery, now_ms, std::move(repo), kind, "refs/pull/" + std::to_string(number) + "/head",
                             head_sha, std::move(p), login_of(j, "sender"));
}

// "/flurry approve" commented on a pull request.
Result<Parsed> parse_comment(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto issue = j.obj("issue");
  const auto comment = j.obj("comment");
  Comment c{j.str("action"), j.opt_bool("is_pull") || issue.has("pull_request"), comment.opt_str("body"), issue.integer("number"),
            login_of(comment, "user"), "", ""};
  auto repo = read_repo(j.obj("repository"));
  if (!j.error().empty()) return fail(j.rejected());
  c.head_ref = "refs/pull/" + std::to_string(c.number) + "/head";
  return comment_change("gitea", delivery, now_ms, std::move(repo), c);
}

}  // namespace

bool gitea_signature_valid(const std::string& secret, const std::string& body, const std::string& header) {
  if (header.size() != 64) return false;
  return crypto::constant_time_equal(text::to_lower(header), crypto::hmac_sha256_hex(secret, body));
}

Result<Parsed> parse_gitea_event(const std::string& event, const std::string& body, const std::string& delivery,
                                 std::int64_t now_ms) {
  if (event != "push" && event != "pull_request" && event != "issue_comment") return Parsed::ignored("event " + event + " is not handled");
  auto j = Payload::parse(body);
  if (!j) return fail(j.error());
  if (event == "issue_comment") return whole(*j, parse_comment(*j, delivery, now_ms));
  return whole(*j, event == "push" ? parse_push(*j, delivery, now_ms) : parse_pull_request(*j, delivery, now_ms));
}

const Dialect& gitea_dialect() {
  static const Dialect kDialect{
      .forge = "gitea",
      .event_headers = {"x-gitea-event", "x-forgejo-event"},
      .delivery_headers = {"x-gitea-delivery", "x-forgejo-delivery"},
      .delivery_from_body = false,
      .authentic =
          [](const std::string& secret, const http::Request& req) {
            return gitea_signature_valid(secret, req.body, req.header("x-gitea-signature")) ||
                   gitea_signature_valid(secret, req.body, req.header("x-forgejo-signature"));
          },
      .parse = parse_gitea_event,
  };
  return kDialect;
}

}  // namespace flurry::ingest
