#pragma once
#include <string>
#include <string_view>

#include "flurry/core/expected.hpp"

namespace flurry {

// How the caller should react to a failure. Every error a port returns says
// which of these applies; one function in libs/bus maps it to ack/nak/term.
enum class ErrorCode {
  kTransient,  // I/O, lost connection, a forge answering 5xx: try again later.
  kPoison,     // The input can never be handled (bad JSON, unknown version): dead-letter it.
  kRejected,   // The input is wrong and the user must hear about it (report, then ack).
  kNotFound,   // The thing asked for does not exist.
};

struct Error {
  ErrorCode code = ErrorCode::kTransient;
  std::string message;

  static Error transient(std::string m) { return {ErrorCode::kTransient, std::move(m)}; }
  static Error poison(std::string m) { return {ErrorCode::kPoison, std::move(m)}; }
  static Error rejected(std::string m) { return {ErrorCode::kRejected, std::move(m)}; }
  static Error not_found(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
};

std::string_view to_string(ErrorCode c);

// Shorthand for `return flurry::unexpected(Error::transient(...))`.
inline Unexpected<Error> fail(Error e) { return Unexpected<Error>(std::move(e)); }

// Result<T> is the return type of every fallible call in Flurry.
template <typename T = void>
using Result = Expected<T, Error>;

}  // namespace flurry
