#pragma once
// A request's query string, decoded: "a=1&b=x%2Fy+z" -> {a: "1", b: "x/y z"}.
// Malformed escapes and repeated names make it no query (nullopt): a
// hostile query gets a 400, never a guess.
#include <map>
#include <optional>
#include <string>

namespace flurry::web {

using Query = std::map<std::string, std::string>;
std::optional<Query> parse_query(const std::string& query);

}  // namespace flurry::web
