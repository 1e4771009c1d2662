#pragma once
// Project discovery, the forge side: which repositories a forge account
// reaches (with their topics), which of them are projects, and the
// per-repository webhooks that bring their events to webhook-ingest.
//
//   GitHub (as an App only): GET /app/installations (the app's JWT), then
//     per installation GET /installation/repositories (its token). No
//     repository hooks: an app's events come through the app's webhook.
//   Gitea/Forgejo: GET /api/v1/user/repos (all pages), and
//     GET /api/v1/repos/{o}/{r}/topics for the repositories the
//     allow-lists keep; hooks GET/POST /api/v1/repos/{o}/{r}/hooks,
//     PATCH .../hooks/{id}.
//   GitLab: GET /api/v4/projects?membership=true&topic=<topic> (all
//     pages); hooks GET/POST /api/v4/projects/{id}/hooks,
//     PUT .../hooks/{hook_id}.
//
// Errors are values: kTransient when the forge did not answer, answered
// 5xx, 429 or a rate limit (try later); kRejected for any other refusal
// (401, 403, 404, 422), with the status and the forge's message. Tokens
// and webhook secrets never appear in a result.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/forge/github_app.hpp"
#include "flurry/http/http.hpp"

namespace flurry::forge {

// A repository as a forge lists it, forge-neutral.
struct DiscoveredRepo {
  std::string forge;  // "github", "gitea", "gitlab"
  std::string owner;  // GitLab: the namespace path ("group/sub")
  std::string name;   // GitLab: the project's path
  std::string clone_url, html_url, default_branch;
  std::vector<std::string> topics;
  std::int64_t id = 0;  // the forge's id of the repository (GitLab addresses hooks by it); 0 if unknown
  // "owner/name", as change events name the repository.
  std::string full_name() const { return owner + "/" + name; }
};

// Which repositories are projects, as buildbot-nix's filter_repos decides:
// those carrying `topic` (empty: every repository); of those, when either
// allow-list is non-empty, the ones whose owner is in `user_allowlist` or
// whose "owner/name" is in `repo_allowlist`. Names and topics compare
// ASCII case-insensitively, as the forges treat them.
struct RepoFilter {
  std::string topic;
  std::vector<std::string> user_allowlist;
  std::vector<std::string> repo_allowlist;
};
// The allow-list part alone (true when both lists are empty).
bool allowlisted(const RepoFilter& filter, const std::string& owner, const std::string& name);
// The topic part alone (true when no topic is set).
bool has_topic(const RepoFilter& filter, const std::vector<std::string>& topics);
// The repositories both parts keep, in their order.
std::vector<DiscoveredRepo> filter_repos(const RepoFilter& filter, std::vector<DiscoveredRepo> repos);

// The projects a listing found, and what it had to leave out (one
// repository or installation the forge refused to show: "<what>: <why>").
struct Listing {
  std::vector<DiscoveredRepo> repos;
  std::vector<std::string> skipped;
};

// A repository webhook as the forge shows it (forges never show the
// secret back).
struct RepoHook {
  std::int64_t id = 0;
  std::string url;
  bool active = true;
  // Gitea: the event names; GitLab: the *_events flags that are on.
  std::vector<std::string> events;
};

// The hook Flurry wants on a project.
struct HookSpec {
  std::string url;     // <webhook base URL>/webhooks/<forge>
  std::string secret;  // Gitea's signing secret, GitLab's token; never logged
};

// What Flurry remembers of a hook it wrote, because the forge cannot say
// whether its secret is still the one Flurry signs with.
struct ManagedHook {
  std::int64_t id = 0;
  std::string fingerprint;  // hook_fingerprint of the spec written
};

// Changes when the secret or the URL changes, and reveals neither:
// hex HMAC-SHA256 keyed with the secret over the URL.
std::string hook_fingerprint(const HookSpec& spec);

enum class HookAction { kNone, kCreate, kUpdate };
struct HookDecision {
  HookAction action = HookAction::kNone;
  std::int64_t hook_id = 0;  // kUpdate: which hook
  std::string why;           // for the log line
};

// What to do with a repository's hooks. Flurry's hook is the one it
// remembers writing (by id), else the first whose URL is spec.url. None:
// create it. Update it when its URL is not spec.url, when what Flurry
// remembers is missing or has another fingerprint (the secret or URL
// changed, or the hook was never written by this installation), when it
// is inactive, or when it lacks one of `events`. Otherwise nothing: a sync
// with nothing changed writes nothing.
HookDecision decide_hook(const std::vector<RepoHook>& hooks, const HookSpec& spec, const std::vector<std::string>& events,
                         const std::optional<ManagedHook>& remembered);

// One forge's listing and hook API.
class ProjectSource {
 public:
  virtual ~ProjectSource() = default;
  virtual const std::string& forge() const = 0;
  // Every repository the account reaches that `filter` keeps. A repository
  // whose details the forge refuses (403, 404) is skipped and named in
  // Listing::skipped; any other failure fails the whole listing.
  virtual Result<Listing> list_repos(const RepoFilter& filter) = 0;

  // Whether projects get a hook of their own (false for GitHub Apps).
  virtual bool has_repo_hooks() const { return false; }
  // The events Flurry's hook must deliver, as RepoHook::events names them.
  virtual std::vector<std::string> hook_events() const { return {}; }
  virtual Result<std::vector<RepoHook>> list_hooks(const DiscoveredRepo& repo);
  // Creates Flurry's hook (active, JSON, those events); returns its id.
  virtual Result<std::int64_t> create_hook(const DiscoveredRepo& repo, const HookSpec& spec);
  // Sets hook `hook_id`'s URL, secret and events, and makes it active.
  virtual Result<void> update_hook(const DiscoveredRepo& repo, std::int64_t hook_id, const HookSpec& spec);
};

// GitHub, as the App `tokens` authenticates (installation repositories of
// every installation; 100 per page).
class GitHubProjects final : public ProjectSource {
 public:
  GitHubProjects(http::Client& client, GitHubAppTokens& tokens);
  const std::string& forge() const override { return forge_; }
  Result<Listing> list_repos(const RepoFilter& filter) override;

 private:
  http::Client& client_;
  GitHubAppTokens& tokens_;
  std::string forge_ = "github";
};

// Gitea and Forgejo, as the owner of `token` (50 repositories per page).
class GiteaProjects final : public ProjectSource {
 public:
  GiteaProjects(http::Client& client, std::string api_url, std::string token);
  const std::string& forge() const override { return forge_; }
  Result<Listing> list_repos(const RepoFilter& filter) override;
  bool has_repo_hooks() const override { return true; }
  std::vector<std::string> hook_events() const override { return {"push", "pull_request", "issue_comment"}; }
  Result<std::vector<RepoHook>> list_hooks(const DiscoveredRepo& repo) override;
  Result<std::int64_t> create_hook(const DiscoveredRepo& repo, const HookSpec& spec) override;
  Result<void> update_hook(const DiscoveredRepo& repo, std::int64_t hook_id, const HookSpec& spec) override;

 private:
  std::map<std::string, std::string> headers() const;
  std::string hooks_url(const DiscoveredRepo& repo) const;

  http::Client& client_;
  std::string api_url_;
  std::string token_;
  std::string forge_ = "gitea";
};

// GitLab, as a member (projects of the topic, 100 per page; hooks with
// push, tag push, merge request and note events).
class GitLabProjects final : public ProjectSource {
 public:
  GitLabProjects(http::Client& client, std::string api_url, std::string token);
  const std::string& forge() const override { return forge_; }
  Result<Listing> list_repos(const RepoFilter& filter) override;
  bool has_repo_hooks() const override { return true; }
  std::vector<std::string> hook_events() const override {
    return {"push_events", "tag_push_events", "merge_requests_events", "note_events"};
  }
  Result<std::vector<RepoHook>> list_hooks(const DiscoveredRepo& repo) override;
  Result<std::int64_t> create_hook(const DiscoveredRepo& repo, const HookSpec& spec) override;
  Result<void> update_hook(const DiscoveredRepo& repo, std::int64_t hook_id, const HookSpec& spec) override;

 private:
  std::map<std::string, std::string> headers() const;
  std::string hooks_url(const DiscoveredRepo& repo) const;

  http::Client& client_;
  std::string api_url_;
  std::string token_;
  std::string forge_ = "gitlab";
};

}  // namespace flurry::forge
