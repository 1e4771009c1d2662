#pragma once
// Forge webhooks, forge-neutral: each forge's dialect says how a request
// is authenticated and how its events read; handle_webhook does the rest
// (headers, answer codes, publishing). Pure logic over ports.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/http/http.hpp"
#include "flurry/messages/messages.hpp"

namespace flurry::ingest {

// Asks project discovery to refresh `forge`'s projects soon; false when
// discovery does not cover that forge.
using RefreshProjects = std::function<bool(const std::string& forge)>;

struct IngestPorts {
  bus::Bus& bus;
  Clock& clock;
  RefreshProjects refresh_projects = {};  // none: discovery is not configured
};

// What a webhook asks of Flurry.
struct Parsed {
  // kRefresh: the forge says which repositories the account reaches
  // changed (GitHub installation, installation_repositories).
  enum class Kind { kChange, kIgnored, kPing, kRefresh };
  Kind kind = Kind::kIgnored;
  msg::ChangeEvent change;  // kChange
  std::string reason;       // kIgnored: why nothing is done; kRefresh: what changed
  static Parsed ignored(std::string why) { return {Kind::kIgnored, {}, std::move(why)}; }
  static Parsed ping() { return {Kind::kPing, {}, ""}; }
  static Parsed change_of(msg::ChangeEvent c) { return {Kind::kChange, std::move(c), ""}; }
  static Parsed refresh(std::string what) { return {Kind::kRefresh, {}, std::move(what)}; }
};

// One forge's webhook dialect.
struct Dialect {
  std::string forge;  // "github", "gitea", "gitlab": the subject and the change id's prefix
  // Headers naming the event and the delivery, lower case; the first
  // present wins.
  std::vector<std::string> event_headers;
  std::vector<std::string> delivery_headers;
  // Without a delivery header (older GitLab), the delivery id is the
  // body's SHA-256, so a redelivery of the same bytes is still one change.
  bool delivery_from_body = false;
  // True if the request carries proof of `secret`.
  std::function<bool(const std::string& secret, const http::Request&)> authentic;
  // Reads the event; a rejected error names the bad field.
  std::function<Result<Parsed>(const std::string& event, const std::string& body, const std::string& delivery, std::int64_t now_ms)>
      parse;
};

const Dialect& github_dialect();
const Dialect& gitea_dialect();   // Gitea and Forgejo
const Dialect& gitlab_dialect();

// What happened to one webhook, for the log line and metrics.
struct WebhookOutcome {
  http::Response response;
  std::string event;     // the event header, "" if absent
  std::string delivery;  // the delivery id, "" if absent
  std::string result;    // accepted, ignored, ping, refresh, unauthorized, bad_request, unavailable
  std::string detail;    // why (never the body or the secret)
};

// Handles POST /webhooks/<forge>. Answers 202 for a change only after the
// bus stored the change event (msg id = the change id, so a redelivered
// webhook is deduplicated), 503 when it could not; 401 without proof of
// the secret; 400 for malformed headers or payloads; 200 for a ping; 202
// for events that need nothing, and for those that ask for a refresh of
// the projects (once asked of ports.refresh_projects; ignored when it
// does not cover the forge).
WebhookOutcome handle_webhook(const Dialect& dialect, const http::Request& req, const std::string& secret, IngestPorts ports);

// Forge-neutral construction of change events, shared by the dialects.
// A push of `after` to `ref`: deleted refs (all-zero `after`) and refs that
// are neither branches nor tags are ignored; `after` must be a 40-hex sha.
Result<Parsed> push_change(const std::string& forge, const std::string& delivery, std::int64_t now_ms, msg::Repo repo,
                           const std::string& ref, const std::string& before, const std::string& after, bool deleted,
                           const std::string& sender);
// A pull request whose head is `head_rev` (kind pull_request or
// pull_request_closed); `head_ref` is the forge's ref of its head.
Result<Parsed> pull_request_change(const std::string& forge, const std::string& delivery, std::int64_t now_ms, msg::Repo repo,
                                   std::string_view kind, const std::string& head_ref, const std::string& head_rev,
                                   msg::PullRequest pr, const std::string& sender);

// A comment, as every forge describes one.
struct Comment {
  std::string action;       // GitHub and Gitea: "created"; GitLab notes: "create" (or none)
  bool on_pull_request = false;
  std::string body;
  std::int64_t number = 0;  // the pull request's
  std::string by;
  std::string association;  // GitHub's author_association; "" elsewhere
  std::string head_ref;     // the forge's ref of the pull request's head
};
// A new comment whose line is the approve command approves its pull
// request (kind approve); anything else needs nothing. Rejected when the
// fields an approval needs are missing.
Result<Parsed> comment_change(const std::string& forge, const std::string& delivery, std::int64_t now_ms, msg::Repo repo,
                              const Comment& comment);

// Parsers, per forge (exposed for tests).
Result<Parsed> parse_github_event(const std::string& event, const std::string& body, const std::string& delivery, std::int64_t now_ms);
Result<Parsed> parse_gitea_event(const std::string& event, const std::string& body, const std::string& delivery, std::int64_t now_ms);
Result<Parsed> parse_gitlab_event(const std::string& event, const std::string& body, const std::string& delivery, std::int64_t now_ms);

// Authentication, per forge: GitHub "sha256=<hex HMAC-SHA256(secret, body)>";
// Gitea/Forgejo the bare hex HMAC; GitLab the secret token itself. All
// compare in constant time.
bool github_signature_valid(const std::string& secret, const std::string& body, const std::string& signature_header);
bool gitea_signature_valid(const std::string& secret, const std::string& body, const std::string& signature_header);
bool gitlab_token_valid(const std::string& secret, const std::string& token_header);

}  // namespace flurry::ingest
