#pragma once
// NATS subjects and JetStream streams, documented in one place.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flurry::subjects {

// Streams (created by every service at start-up; creation is idempotent).
inline constexpr std::string_view kChangesStream = "FLURRY_CHANGES";  // work queue: flurry.change.>
inline constexpr std::string_view kBuildsStream = "FLURRY_BUILDS";    // work queue: flurry.build.>
inline constexpr std::string_view kEventsStream = "FLURRY_EVENTS";    // limits (7 days): job/eval/status/effect
inline constexpr std::string_view kDeadStream = "FLURRY_DEAD";        // limits (30 days): flurry.dead.>

inline constexpr std::string_view kJobFinished = "flurry.job.finished";
inline constexpr std::string_view kEvalFinished = "flurry.eval.finished";

// A subject token must not contain '.', '*', '>' or whitespace.
std::string token(std::string_view s);
inline std::string change(std::string_view forge) { return "flurry.change." + token(forge); }
inline std::string build(std::string_view system) { return "flurry.build." + token(system); }
// Build requests of derivations with requiredSystemFeatures go to
// flurry.build.<system>.<feature>+<feature>... (feature tokens sorted, no
// repeats, '+' in a name becomes '_'); without features, to build(system).
std::vector<std::string> feature_tokens(const std::vector<std::string>& features);
std::string build(std::string_view system, const std::vector<std::string>& features);
// The feature tokens a build subject of `system` asks for ({} for the
// plain one); nullopt when it is not a build subject of that system.
std::optional<std::vector<std::string>> build_features(std::string_view subject, std::string_view system);
// A consumer (durable) name: a token without path separators.
std::string durable(std::string_view name);
inline std::string status(std::string_view forge) { return "flurry.status." + token(forge); }
inline std::string dead(std::string_view consumer) { return "flurry.dead." + token(consumer); }

}  // namespace flurry::subjects
