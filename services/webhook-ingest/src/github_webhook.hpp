#pragma once
// GitHub webhook handling: signature check, event routing and the mapping
// of a push to a forge-neutral msg::ChangeEvent. Pure logic over ports.
#include <string>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/http/http.hpp"
#include "flurry/messages/messages.hpp"

namespace flurry::ingest {

struct IngestPorts {
  bus::Bus& bus;
  Clock& clock;
};

// What happened to one webhook, for the log line and metrics.
struct WebhookOutcome {
  http::Response response;
  std::string event;     // X-GitHub-Event, "" if absent
  std::string delivery;  // X-GitHub-Delivery, "" if absent
  std::string result;    // accepted, ignored, ping, unauthorized, bad_request, unavailable
  std::string detail;    // why (never the body or the secret)
};

// true if `signature_header` is "sha256=<hex HMAC-SHA256(secret, body)>";
// compares in constant time.
bool github_signature_valid(const std::string& secret, const std::string& body, const std::string& signature_header);

// Maps a push payload to a ChangeEvent. Error (rejected) naming the bad
// field when the payload is malformed. `ignored` is set for pushes that
// need no evaluation (deleted refs).
struct PushParse {
  msg::ChangeEvent change;
  bool ignored = false;
  std::string reason;
};
Result<PushParse> parse_github_push(const std::string& body, const std::string& delivery, std::int64_t now_ms);

// Handles POST /webhooks/github. Answers 2xx for a push only after the bus
// stored the change event (msg id = the change id, so a redelivered webhook
// is deduplicated), 503 when it could not.
WebhookOutcome handle_github_webhook(const http::Request& req, const std::string& secret, IngestPorts ports);

}  // namespace flurry::ingest
