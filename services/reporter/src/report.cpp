#include "report.hpp"

#include "flurry/core/crypto.hpp"

namespace flurry::reporter {

std::string context_key(const msg::StatusEvent& s) {
  // Hashed: owner, repo and context are attacker-controlled and unbounded.
  return crypto::sha256_hex(s.repo.forge + "\n" + s.repo.owner + "\n" + s.repo.name + "\n" + s.rev + "\n" + s.context);
}

ReportOutcome handle_status(const msg::StatusEvent& status, std::uint64_t num_delivered, ReportPorts ports) {
  ReportOutcome o;
  forge::StatusPoster* poster = ports.posters ? ports.posters(status.repo.forge) : nullptr;
  if (!poster) {
    o.result = "skipped";
    o.detail = "no forge client for " + status.repo.forge;
    o.disposition = bus::Disposition::ack();
    return o;
  }
  auto fresh = ports.state.advance_status(context_key(status), status.at_us);
  if (!fresh) {
    o.result = "retry";
    o.disposition = bus::disposition_for(fresh.error(), num_delivered);
    return o;
  }
  if (!*fresh) {
    o.result = "stale";
    o.detail = "a newer status for this context was already posted";
    o.disposition = bus::Disposition::ack();
    return o;
  }
  auto r = poster->post(status);
  if (r.ok) {
    o.result = "posted";
    o.disposition = bus::Disposition::ack();
    return o;
  }
  o.detail = r.message;
  if (r.retry) {
    o.result = "retry";
    auto backoff = bus::disposition_for(Error::transient(r.message), num_delivered);
    if (r.retry_after) backoff.delay = std::chrono::duration_cast<std::chrono::milliseconds>(*r.retry_after);
    o.disposition = backoff;
    return o;
  }
  o.result = "rejected";
  o.disposition = bus::Disposition::ack();
  return o;
}

}  // namespace flurry::reporter
