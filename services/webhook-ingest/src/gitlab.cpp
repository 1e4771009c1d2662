// GitLab's webhooks: X-Gitlab-Token (the secret itself), X-Gitlab-Event,
// X-Gitlab-Event-UUID (or Idempotency-Key; older versions send neither).
// Projects live in nested groups: owner is the namespace path
// ("group/subgroup"), name the project's path.
#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "payload.hpp"
#include "webhook.hpp"

namespace flurry::ingest {
namespace {

// A project object (push: "project"; merge request: "project" = target).
msg::Repo read_project(const Payload& project) {
  msg::Repo r;
  const auto path = project.str("path_with_namespace");
  r.clone_url = project.opt_str("git_http_url", project.opt_str("http_url"));
  r.html_url = project.opt_str("web_url");
  r.default_branch = project.opt_str("default_branch");
  auto slash = path.rfind('/');
  if (slash != std::string::npos) {
    r.owner = path.substr(0, slash);
    r.name = path.substr(slash + 1);
  }
  return r;
}

Result<msg::Repo> checked_project(const Payload& j) {
  auto repo = read_project(j.obj("project"));
  if (!j.error().empty()) return fail(j.rejected());
  if (repo.owner.empty() || repo.name.empty()) {
    return fail(Error::rejected("field project.path_with_namespace is not <namespace>/<project>"));
  }
  if (repo.clone_url.empty()) return fail(Error::rejected("missing or mistyped field project.git_http_url (a string)"));
  return repo;
}

Result<Parsed> parse_push(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto ref = j.str("ref");
  const auto after = j.str("after");
  auto repo = checked_project(j);
  if (!repo) return fail(repo.error());
  return push_change("gitlab", delivery, now_ms, std::move(*repo), ref, j.opt_str("before"), after, false,
                     j.opt_str("user_username"));
}

Result<Parsed> parse_merge_request(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto mr = j.obj("object_attributes");
  const auto iid = mr.integer("iid");
  const auto action = mr.opt_str("action");
  const auto head_sha = mr.obj("last_commit").str("id");
  msg::PullRequest p;
  p.number = static_cast<int>(iid);
  p.base_branch = mr.str("target_branch");
  p.head_branch = mr.str("source_branch");
  auto source = mr.opt_obj("source");
  p.head_clone_url = source ? source->opt_str("git_http_url", source->opt_str("http_url")) : "";
  p.from_fork = mr.has("source_project_id") && mr.has("target_project_id") &&
                mr.integer("source_project_id") != mr.integer("target_project_id");
  p.title = mr.opt_str("title");
  p.labels = j.names_in("labels", "title");
  const auto user = j.opt_obj("user");
  const auto actor = user ? user->opt_str("username") : "";
  if (action == "open") p.author = actor;  // the one who opens it is its author
  auto repo = checked_project(j);
  if (!repo) return fail(repo.error());
  if (iid <= 0 || iid > 1'000'000'000) return fail(Error::rejected("field object_attributes.iid is not a merge request number"));

  std::string_view kind;
  const bool new_commits = mr.has("oldrev");
  const bool retargeted = j.opt_obj("changes") && j.obj("changes").has("target_branch");
  // A label may be the trust label: the evaluator decides.
  const bool relabeled = j.opt_obj("changes") && j.obj("changes").has("labels");
  if (action == "open" || action == "reopen" || (action == "update" && (new_commits || retargeted || relabeled))) {
    kind = msg::kPullRequest;
  } else if (action == "close" || action == "merge") {
    kind = msg::kPullRequestClosed;
  } else {
    return Parsed::ignored("merge request action " + text::truncate_utf8(action.empty() ? "(none)" : action, 40) +
                           " needs no evaluation");
  }
  return pull_request_change("gitlab", delivery, now_ms, std::move(*repo), kind,
                             "refs/merge-requests/" + std::to_string(iid) + "/head", head_sha, std::move(p), actor);
}

// "/flurry approve" commented on a merge request.
Result<Parsed> parse_note(const Payload& j, const std::string& delivery, std::int64_t now_ms) {
  const auto note = j.obj("object_attributes");
  const bool on_mr = note.opt_str("noteable_type") == "MergeRequest";
  const auto user = j.opt_obj("user");
  Comment c{note.opt_str("action"), on_mr, note.opt_str("note"), on_mr ? j.obj("merge_request").integer("iid") : 0, user ? user->opt_str("username") : "",
            "", ""};
  if (!on_mr) return Parsed::ignored("a note on something else than a merge request");
  auto repo = checked_project(j);
  if (!repo) return fail(repo.error());
  c.head_ref = "refs/merge-requests/" + std::to_string(c.number) + "/head";
  return comment_change("gitlab", delivery, now_ms, std::move(*repo), c);
}

}  // namespace

bool gitlab_token_valid(const std::string& secret, const std::string& header) {
  return !header.empty() && crypto::constant_time_equal(header, secret);
}

Result<Parsed> parse_gitlab_event(const std::string& event, const std::string& body, const std::string& delivery,
                                  std::int64_t now_ms) {
  // Project hooks name the event; system hooks say "System Hook" and the
  // body's object_kind tells.
  if (event != "Push Hook" && event != "Tag Push Hook" && event != "Merge Request Hook" && event != "Note Hook" &&
      event != "System Hook") {
    return Parsed::ignored("event " + event + " is not handled");
  }
  auto j = Payload::parse(body);
  if (!j) return fail(j.error());
  const auto kind = j->opt_str("object_kind", j->opt_str("event_name"));
  if (!j->error().empty()) return fail(j->rejected());
  if (kind == "push" || kind == "tag_push") return whole(*j, parse_push(*j, delivery, now_ms));
  if (kind == "merge_request") return whole(*j, parse_merge_request(*j, delivery, now_ms));
  if (kind == "note") return whole(*j, parse_note(*j, delivery, now_ms));
  return Parsed::ignored("object_kind " + text::truncate_utf8(kind.empty() ? "(none)" : kind, 40) + " is not handled");
}

const Dialect& gitlab_dialect() {
  static const Dialect kDialect{
      .forge = "gitlab",
      .event_headers = {"x-gitlab-event"},
      .delivery_headers = {"x-gitlab-event-uuid", "idempotency-key"},
      .delivery_from_body = true,
      .authentic = [](const std::string& secret,
                      const http::Request& req) { return gitlab_token_valid(secret, req.header("x-gitlab-token")); },
      .parse = parse_gitlab_event,
  };
  return kDialect;
}

}  // namespace flurry::ingest
