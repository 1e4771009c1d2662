#pragma once
// One forge API call whose answer is JSON, for the discovery clients:
// the answer read, or an error saying whether waiting helps. Private to
// flurry_forge.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>

#include "flurry/core/error.hpp"
#include "flurry/http/http.hpp"

namespace flurry::forge::detail {

struct JsonAnswer {
  nlohmann::json body;
  http::Response response;  // for paging headers
};

// Sends `method` `url` (with `body` as JSON when not empty). A 2xx answer
// whose body is JSON (or empty: null) is a value. No answer, 5xx, 429
// and rate-limited 403s are kTransient; every other answer kRejected with
// "<forge> answered <status>: <message>" (the request, and so its token
// or secret, is never part of it).
Result<JsonAnswer> call_json(http::Client& client, const std::string& method, const std::string& url,
                             std::map<std::string, std::string> headers, const std::string& body, std::string_view forge);

// A string member, or "" when missing or not a string.
std::string str_of(const nlohmann::json& j, const char* key);
// An integer member, or 0.
std::int64_t int_of(const nlohmann::json& j, const char* key);
// The strings of an array member (others skipped).
std::vector<std::string> strings_of(const nlohmann::json& j, const char* key);

// `j` as a request body; invalid UTF-8 is replaced, never thrown about.
inline std::string body_text(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// Paging: hostile or broken forges must not keep a listing going forever.
inline constexpr int kMaxPages = 1000;

}  // namespace flurry::forge::detail
