// Forge webhooks on arbitrary bodies: each input is the body of a signed
// webhook of every event Flurry reads from GitHub, Gitea/Forgejo and
// GitLab (so raw payloads seed every parser), and once more with the event
// and delivery headers and the signatures taken from its first bytes.
//
// Whatever the body, handle_webhook answers 200, 202 or 400 (never 401: the
// request is signed) and publishes exactly when it accepts; what it
// publishes is a change event the evaluator decodes back to the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "finding.hpp"
#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/messages/subjects.hpp"
#include "webhook.hpp"

namespace {

using namespace flurry;
using namespace flurry::ingest;

const std::string kSecret = "fuzz-secret";

struct Event {
  const Dialect& (*dialect)();
  const char* name;
};

// Every event some parser reads, plus one that none does.
const Event kEvents[] = {
    {github_dialect, "ping"},
    {github_dialect, "push"},
    {github_dialect, "pull_request"},
    {github_dialect, "issue_comment"},
    {github_dialect, "check_run"},
    {github_dialect, "check_suite"},
    {github_dialect, "installation"},
    {github_dialect, "installation_repositories"},
    {github_dialect, "release"},
    {gitea_dialect, "push"},
    {gitea_dialect, "pull_request"},
    {gitea_dialect, "issue_comment"},
    {gitlab_dialect, "Push Hook"},
    {gitlab_dialect, "Tag Push Hook"},
    {gitlab_dialect, "Merge Request Hook"},
    {gitlab_dialect, "Note Hook"},
    {gitlab_dialect, "System Hook"},
};

// The request `dialect`'s forge sends, signed with kSecret.
http::Request signed_request(const Dialect& dialect, const std::string& event, const std::string& delivery, std::string body,
                             const std::string& hmac_hex) {
  http::Request r;
  r.method = "POST";
  r.path = "/webhooks/" + dialect.forge;
  if (dialect.forge == "github") r.headers["x-hub-signature-256"] = "sha256=" + hmac_hex;
  if (dialect.forge == "gitea") r.headers["x-gitea-signature"] = hmac_hex;
  if (dialect.forge == "gitlab") r.headers["x-gitlab-token"] = kSecret;
  if (!event.empty()) r.headers[dialect.event_headers.front()] = event;
  if (!delivery.empty()) r.headers[dialect.delivery_headers.front()] = delivery;
  r.body = std::move(body);
  return r;
}

// The properties every answer has; `what` says which request it was.
void check_outcome(const Dialect& dialect, const WebhookOutcome& o, const bus::testing::MemoryBus& bus, const std::string& what) {
  const int status = o.response.status;
  if (status != 200 && status != 202 && status != 400) fuzz::finding(what + ": signed webhook answered " + std::to_string(status), o.detail);
  const auto published = bus.published();
  if (o.result != "accepted") {
    if (!published.empty()) fuzz::finding(what + ": published a message without accepting (" + o.result + ")", published.front().data);
    return;
  }
  if (status != 202 || published.size() != 1) fuzz::finding(what + ": accepted but published " + std::to_string(published.size()));
  const auto& m = published.front();
  if (m.subject != subjects::change(dialect.forge)) fuzz::finding(what + ": published on " + m.subject);
  auto change = msg::decode_change_event(m.data);
  if (!change) fuzz::finding(what + ": the evaluator cannot decode the change: " + change.error().message, m.data);
  if (msg::encode(*change) != m.data) fuzz::finding(what + ": the change does not re-encode to the same bytes", m.data);
  if (change->id != m.msg_id || change->repo.forge != dialect.forge) fuzz::finding(what + ": wrong change id or forge", m.data);
  auto answer = nlohmann::json::parse(o.response.body, nullptr, false);
  if (answer.is_discarded() || !answer.is_object() || answer.value("change_id", "") != change->id) {
    fuzz::finding(what + ": the 202 answer is not JSON naming the change", o.response.body);
  }
}

void run(const Dialect& dialect, http::Request req, const std::string& what) {
  bus::testing::MemoryBus bus;
  ManualClock clock;
  const auto o = handle_webhook(dialect, req, kSecret, {bus, clock, [](const std::string&) { return true; }});
  check_outcome(dialect, o, bus, what);
}

// Signatures and tokens from hostile headers: only the right one passes.
void check_signatures(const std::string& header, const std::string& body, const std::string& hmac_hex) {
  if (github_signature_valid(kSecret, body, header) && text::to_lower(header) != "sha256=" + hmac_hex) {
    fuzz::finding("a wrong GitHub signature was accepted", header);
  }
  if (gitea_signature_valid(kSecret, body, header) && text::to_lower(header) != hmac_hex) {
    fuzz::finding("a wrong Gitea signature was accepted", header);
  }
  if (gitlab_token_valid(kSecret, header) && header != kSecret) fuzz::finding("a wrong GitLab token was accepted", header);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const auto hmac_hex = crypto::hmac_sha256_hex(kSecret, body);
  for (const auto& e : kEvents) {
    const auto& dialect = e.dialect();
    // GitLab without a delivery header: the id is the body's hash.
    const std::string delivery = dialect.delivery_from_body ? "" : "fuzz-delivery-1";
    run(dialect, signed_request(dialect, e.name, delivery, body, hmac_hex), dialect.forge + " " + e.name);
  }

  // Headers from the input: event, delivery and signature, then the body.
  const std::size_t n = std::min<std::size_t>(size / 4, 80);
  const std::string event = body.substr(0, n);
  const std::string delivery = body.substr(n, n);
  const std::string signature = body.substr(2 * n, n);
  const std::string rest = body.substr(3 * n);
  const auto rest_hmac = crypto::hmac_sha256_hex(kSecret, rest);
  for (const auto* dialect : {&github_dialect(), &gitea_dialect(), &gitlab_dialect()}) {
    run(*dialect, signed_request(*dialect, event, delivery, rest, rest_hmac), dialect->forge + " with hostile headers");
  }
  check_signatures(signature, rest, rest_hmac);
  return 0;
}
