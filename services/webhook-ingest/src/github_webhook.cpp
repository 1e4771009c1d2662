#include "github_webhook.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/crypto.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/messages/subjects.hpp"

namespace flurry::ingest {
namespace {

using json = nlohmann::json;

http::Response text(int status, const std::string& body) { return {status, body + "\n"}; }

bool sane_delivery_id(const std::string& id) {
  if (id.empty() || id.size() > 200) return false;
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// Reads a string member; sets `missing` to the path when absent or not a string.
std::string str(const json& obj, const char* key, const std::string& path, std::string& missing) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    if (missing.empty()) missing = path + key;
    return {};
  }
  return it->get<std::string>();
}

}  // namespace

bool github_signature_valid(const std::string& secret, const std::string& body, const std::string& header) {
  const std::string prefix = "sha256=";
  if (header.size() != prefix.size() + 64 || header.compare(0, prefix.size(), prefix) != 0) return false;
  auto expected = crypto::hmac_sha256_hex(secret, body);
  return crypto::constant_time_equal(text::to_lower(header.substr(prefix.size())), expected);
}

Result<PushParse> parse_github_push(const std::string& body, const std::string& delivery, std::int64_t now_ms) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return fail(Error::rejected("body is not valid JSON"));
  if (!j.is_object()) return fail(Error::rejected("body is not a JSON object"));
  PushParse out;
  std::string missing;
  std::string ref = str(j, "ref", "", missing);
  std::string after = str(j, "after", "", missing);
  auto repo_it = j.find("repository");
  if (repo_it == j.end() || !repo_it->is_object()) return fail(Error::rejected("missing field repository"));
  const json& repo = *repo_it;
  std::string name = str(repo, "name", "repository.", missing);
  std::string clone_url = str(repo, "clone_url", "repository.", missing);
  std::string default_branch = str(repo, "default_branch", "repository.", missing);
  std::string owner;
  auto owner_it = repo.find("owner");
  if (owner_it != repo.end() && owner_it->is_object()) {
    std::string ignore;
    owner = str(*owner_it, "login", "", ignore);
    if (owner.empty()) owner = str(*owner_it, "name", "", ignore);
  }
  if (owner.empty() && missing.empty()) missing = "repository.owner.login";
  if (!missing.empty()) return fail(Error::rejected("missing or mistyped field " + missing));

  bool deleted = j.value("deleted", false) || after == std::string(40, '0');
  if (deleted) {
    out.ignored = true;
    out.reason = "deleted ref";
    return out;
  }
  if (!text::is_sha1_hex(after)) return fail(Error::rejected("field after is not a 40-hex commit id"));

  msg::ChangeEvent& c = out.change;
  c.id = "github:" + delivery;
  c.kind = "push";
  c.repo.forge = "github";
  c.repo.owner = owner;
  c.repo.name = name;
  c.repo.clone_url = clone_url;
  std::string ignore;
  c.repo.html_url = str(repo, "html_url", "", ignore);
  c.repo.default_branch = default_branch;
  c.ref = ref;
  if (text::starts_with(ref, "refs/heads/")) {
    c.branch = ref.substr(11);
  } else if (text::starts_with(ref, "refs/tags/")) {
    c.tag = ref.substr(10);
  } else {
    out.ignored = true;
    out.reason = "ref is neither a branch nor a tag";
    return out;
  }
  c.rev = text::to_lower(after);
  std::string before = j.contains("before") && j["before"].is_string() ? j["before"].get<std::string>() : "";
  c.before = text::is_sha1_hex(before) ? before : "";
  if (auto s = j.find("sender"); s != j.end() && s->is_object()) c.sender = str(*s, "login", "", ignore);
  c.received_at_ms = now_ms;
  return out;
}

WebhookOutcome handle_github_webhook(const http::Request& req, const std::string& secret, IngestPorts ports) {
  WebhookOutcome o;
  o.event = req.header("x-github-event");
  o.delivery = req.header("x-github-delivery");
  if (!github_signature_valid(secret, req.body, req.header("x-hub-signature-256"))) {
    o.result = "unauthorized";
    o.detail = req.header("x-hub-signature-256").empty() ? "missing signature" : "signature mismatch";
    o.response = text(401, "invalid signature");
    return o;
  }
  if (o.event.empty() || !sane_delivery_id(o.delivery)) {
    o.result = "bad_request";
    o.detail = o.event.empty() ? "missing X-GitHub-Event" : "missing or malformed X-GitHub-Delivery";
    o.response = text(400, o.detail);
    // Never echo a hostile header back into logs verbatim.
    if (!sane_delivery_id(o.delivery)) o.delivery = text::truncate_utf8(o.delivery, 64);
    return o;
  }
  if (o.event == "ping") {
    o.result = "ping";
    o.response = text(200, "pong");
    return o;
  }
  if (o.event != "push") {
    o.result = "ignored";
    o.detail = "event not handled";
    o.response = text(202, "ignored event " + text::truncate_utf8(o.event, 64));
    return o;
  }
  auto parsed = parse_github_push(req.body, o.delivery, ports.clock.now_ms());
  if (!parsed) {
    o.result = "bad_request";
    o.detail = parsed.error().message;
    o.response = text(400, parsed.error().message);
    return o;
  }
  if (parsed->ignored) {
    o.result = "ignored";
    o.detail = parsed->reason;
    o.response = text(202, "ignored: " + parsed->reason);
    return o;
  }
  const auto& change = parsed->change;
  auto published = ports.bus.publish({subjects::change("github"), msg::encode(change), change.id});
  if (!published) {
    o.result = "unavailable";
    o.detail = published.error().message;
    o.response = text(503, "cannot queue the event right now; retry later");
    return o;
  }
  o.result = "accepted";
  o.response = {202, "{\"accepted\":true,\"change_id\":\"" + log::json_escape(change.id) + "\"}\n", "application/json"};
  return o;
}

}  // namespace flurry::ingest
