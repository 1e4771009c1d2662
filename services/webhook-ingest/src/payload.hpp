#pragma once
// Reading forge webhook payloads: every field a parser asks for is checked
// for presence and type, and the first one that is wrong is named by its
// path ("pull_request.head.sha") in the 400 the forge gets back.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flurry/core/error.hpp"

namespace flurry::ingest {

class Payload {
 public:
  // The body as a JSON object; rejected error when it is not one.
  static Result<Payload> parse(const std::string& body);

  // Required members: a missing or mistyped one is recorded (see error())
  // and an empty value returned, so a parser reads on and reports once.
  std::string str(const char* key) const;
  std::int64_t integer(const char* key) const;
  Payload obj(const char* key) const;
  // Optional members: absent or null gives the fallback; a wrong type is
  // still an error.
  std::string opt_str(const char* key, std::string fallback = "") const;
  bool opt_bool(const char* key, bool fallback = false) const;
  std::optional<Payload> opt_obj(const char* key) const;
  bool has(const char* key) const;
  // The string members `key` of each object in the array `list` (e.g. the
  // names of labels); absent list: empty.
  std::vector<std::string> names_in(const char* list, const char* key) const;
  // The first element of the array `list` when it is an object.
  std::optional<Payload> first_in(const char* list) const;

  // The first missing or mistyped field, as a sentence; empty when none.
  const std::string& error() const { return *error_; }
  Error rejected() const { return Error::rejected(error()); }

 private:
  Payload(const nlohmann::json* j, std::string path, std::shared_ptr<nlohmann::json> root, std::shared_ptr<std::string> error)
      : j_(j), path_(std::move(path)), root_(std::move(root)), error_(std::move(error)) {}
  const nlohmann::json* member(const char* key) const;
  void wrong(const char* key, const char* what) const;

  const nlohmann::json* j_;
  std::string path_;
  std::shared_ptr<nlohmann::json> root_;  // keeps the document alive
  std::shared_ptr<std::string> error_;
};

// `parsed`, unless a field read while making it was missing or mistyped,
// also one read after the parser's own check (an argument of the call
// that made the change): then the rejection naming that field.
template <typename T>
Result<T> whole(const Payload& j, Result<T> parsed) {
  if (!j.error().empty()) return fail(j.rejected());
  return parsed;
}

}  // namespace flurry::ingest
