#include "webhook.hpp"

#include "flurry/core/crypto.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/messages/subjects.hpp"

namespace flurry::ingest {
namespace {

http::Response text(int status, const std::string& body) { return {status, body + "\n"}; }

bool sane_delivery_id(const std::string& id) {
  if (id.empty() || id.size() > 200) return false;
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string first_header(const http::Request& req, const std::vector<std::string>& names) {
  for (const auto& n : names) {
    auto v = req.header(n);
    if (!v.empty()) return v;
  }
  return {};
}

}  // namespace

Result<Parsed> push_change(const std::string& forge, const std::string& delivery, std::int64_t now_ms, msg::Repo repo,
                           const std::string& ref, const std::string& before, const std::string& after, bool deleted,
                           const std::string& sender) {
  if (deleted || after == std::string(40, '0')) return Parsed::ignored("deleted ref");
  if (!text::is_sha1_hex(after)) return fail(Error::rejected("the pushed commit is not a 40-hex commit id"));
  msg::ChangeEvent c;
  c.id = forge + ":" + delivery;
  c.kind = msg::kPush;
  repo.forge = forge;
  c.repo = std::move(repo);
  c.ref = ref;
  if (text::starts_with(ref, "refs/heads/")) {
    c.branch = ref.substr(11);
  } else if (text::starts_with(ref, "refs/tags/")) {
    c.tag = ref.substr(10);
  } else {
    return Parsed::ignored("ref is neither a branch nor a tag");
  }
  c.rev = text::to_lower(after);
  c.before = text::is_sha1_hex(before) && before != std::string(40, '0') ? text::to_lower(before) : "";
  c.sender = sender;
  c.received_at_ms = now_ms;
  return Parsed::change_of(std::move(c));
}

Result<Parsed> pull_request_change(const std::string& forge, const std::string& delivery, std::int64_t now_ms, msg::Repo repo,
                                   std::string_view kind, const std::string& head_ref, const std::string& head_rev,
                                   msg::PullRequest pr, const std::string& sender) {
  if (pr.number <= 0) return fail(Error::rejected("the pull request number must be positive"));
  if (!text::is_sha1_hex(head_rev)) return fail(Error::rejected("the pull request's head is not a 40-hex commit id"));
  if (pr.base_branch.empty()) return fail(Error::rejected("the pull request names no base branch"));
  if (!pr.base_rev.empty() && !text::is_sha1_hex(pr.base_rev)) pr.base_rev.clear();
  pr.base_rev = text::to_lower(pr.base_rev);
  msg::ChangeEvent c;
  c.id = forge + ":" + delivery;
  c.kind = std::string(kind);
  repo.forge = forge;
  c.repo = std::move(repo);
  c.ref = head_ref;
  c.rev = text::to_lower(head_rev);
  c.sender = sender;
  c.received_at_ms = now_ms;
  c.pull_request = std::move(pr);
  return Parsed::change_of(std::move(c));
}

Result<Parsed> comment_change(const std::string& forge, const std::string& delivery, std::int64_t now_ms, msg::Repo repo,
                              const Comment& comment) {
  if (comment.action != "created" && comment.action != "create" && !comment.action.empty()) {
    return Parsed::ignored("comment action " + text::truncate_utf8(comment.action, 40) + " needs nothing");
  }
  if (!comment.on_pull_request) return Parsed::ignored("a comment on something else than a pull request");
  if (!msg::is_approve_command(comment.body)) return Parsed::ignored("a comment without the approve command");
  if (repo.owner.empty() || repo.name.empty()) return fail(Error::rejected("the comment names no repository"));
  if (comment.number <= 0 || comment.number > 1'000'000'000) return fail(Error::rejected("the comment names no pull request number"));
  if (comment.by.empty()) return fail(Error::rejected("the comment names no author"));
  msg::ChangeEvent c;
  c.id = forge + ":" + delivery;
  c.kind = msg::kApprove;
  repo.forge = forge;
  c.repo = std::move(repo);
  c.ref = comment.head_ref;
  c.sender = comment.by;
  c.received_at_ms = now_ms;
  c.pull_request.number = static_cast<int>(comment.number);
  c.approval = {comment.by, comment.association};
  return Parsed::change_of(std::move(c));
}

WebhookOutcome handle_webhook(const Dialect& dialect, const http::Request& req, const std::string& secret, IngestPorts ports) {
  WebhookOutcome o;
  o.event = first_header(req, dialect.event_headers);
  o.delivery = first_header(req, dialect.delivery_headers);
  if (o.delivery.empty() && dialect.delivery_from_body) o.delivery = "body-" + crypto::sha256_hex(req.body);
  if (!dialect.authentic(secret, req)) {
    o.result = "unauthorized";
    o.detail = "missing or wrong signature";
    o.response = text(401, "invalid signature");
    if (!sane_delivery_id(o.delivery)) o.delivery = text::truncate_utf8(o.delivery, 64);
    o.event = text::truncate_utf8(o.event, 64);
    return o;
  }
  if (o.event.empty() || !sane_delivery_id(o.delivery)) {
    o.result = "bad_request";
    o.detail = o.event.empty() ? "missing event header" : "missing or malformed delivery id";
    o.response = text(400, o.detail);
    // Never echo a hostile header back into logs verbatim.
    if (!sane_delivery_id(o.delivery)) o.delivery = text::truncate_utf8(o.delivery, 64);
    o.event = text::truncate_utf8(o.event, 64);
    return o;
  }
  o.event = text::truncate_utf8(o.event, 64);
  auto parsed = dialect.parse(o.event, req.body, o.delivery, ports.clock.now_ms());
  if (!parsed) {
    o.result = "bad_request";
    o.detail = parsed.error().message;
    o.response = text(400, parsed.error().message);
    return o;
  }
  switch (parsed->kind) {
    case Parsed::Kind::kPing:
      o.result = "ping";
      o.response = text(200, "pong");
      return o;
    case Parsed::Kind::kIgnored:
      o.result = "ignored";
      o.detail = parsed->reason;
      o.response = text(202, "ignored: " + parsed->reason);
      return o;
    case Parsed::Kind::kRefresh:
      if (!ports.refresh_projects || !ports.refresh_projects(dialect.forge)) {
        o.result = "ignored";
        o.detail = parsed->reason + "; project discovery does not cover " + dialect.forge;
        o.response = text(202, "ignored: project discovery is not configured");
        return o;
      }
      o.result = "refresh";
      o.detail = parsed->reason + ": projects will be refreshed";
      o.response = text(202, "refreshing projects");
      return o;
    case Parsed::Kind::kChange:
      break;
  }
  const auto& change = parsed->change;
  auto published = ports.bus.publish({subjects::change(dialect.forge), msg::encode(change), change.id});
  if (!published) {
    o.result = "unavailable";
    o.detail = published.error().message;
    o.response = text(503, "cannot queue the event right now; retry later");
    return o;
  }
  o.result = "accepted";
  o.detail = change.kind;
  o.response = {202, "{\"accepted\":true,\"change_id\":\"" + log::json_escape(change.id) + "\"}\n", "application/json"};
  return o;
}

}  // namespace flurry::ingest
