#pragma once
// Reading requests and writing answers the way the faked forges do:
// path matching, query and form decoding, paging, JSON answers. Shared by
// the GitHub, Gitea and GitLab handlers of FakeForge.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flurry/http/http.hpp"

namespace flurry::fakes::detail {

// The non-empty segments of `path` after `prefix` ("/api/v1"), or nullopt
// when it does not start with it.
std::optional<std::vector<std::string>> segments_after(std::string_view path, std::string_view prefix);
// The segments that stand for "*" in `pattern` when `segments` match it
// (same length, every other segment equal); nullopt otherwise.
std::optional<std::vector<std::string>> match(const std::vector<std::string>& segments,
                                              std::initializer_list<std::string_view> pattern);

// %XX decoded; with `form`, '+' is a space too (application/x-www-form-urlencoded).
std::string percent_decode(std::string_view s, bool form = false);
// key=value&... decoded; a repeated key keeps its last value.
std::map<std::string, std::string> parse_query(std::string_view query);
// The request's parameters: a JSON object body, or a form body as an
// object of strings. A discarded value when the body is neither.
nlohmann::json body_params(const http::Request& req);

// A value as a string: strings as they are, numbers and booleans in JSON
// spelling, anything else (missing, null) empty.
std::string text_of(const nlohmann::json& params, const std::string& key);
// A boolean parameter: true/false, or "true"/"1"/"false"/"0" from a form.
bool flag_of(const nlohmann::json& params, const std::string& key, bool fallback);
// The strings of an array parameter (GitHub and Gitea hook events).
std::vector<std::string> strings_of(const nlohmann::json& params, const std::string& key);
// A decimal integer, all of `s`.
std::optional<std::int64_t> to_int(std::string_view s);
// Unicode code points in UTF-8 text (what forges count lengths in).
std::size_t code_points(std::string_view s);
bool is_one_of(const std::string& s, std::initializer_list<std::string_view> allowed);

// One page of a listing: items [begin, end) of `total`, from the page
// number in query["page"] (default 1) and the page size in
// query[size_key] (default `default_size`, at most `max_size`).
struct Page {
  std::size_t begin = 0, end = 0;
  int page = 1, size = 0, pages = 0;
};
Page page_of(std::size_t total, const std::map<std::string, std::string>& query, const std::string& size_key,
             int default_size, int max_size);

// A Link header (RFC 8288) to the next and last pages of `url_without_query`
// as GitHub and Gitea send it; empty when `page` is the last.
std::string link_header(const std::string& url_without_query, const std::string& size_key, const Page& page);

http::Response json_answer(int status, const nlohmann::json& body, std::map<std::string, std::string> headers = {});
// {"message": message}, as all three forges word their errors.
http::Response message_answer(int status, const std::string& message);

// The credential after "Bearer " or "token " in the Authorization header;
// empty when there is none.
std::string authorization_token(const http::Request& req);

}  // namespace flurry::fakes::detail
