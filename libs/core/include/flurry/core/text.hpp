#pragma once
// Small string helpers shared by all services.
#include <string>
#include <string_view>
#include <vector>

namespace flurry::text {

bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
std::string trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
std::string to_lower(std::string_view s);
// True if s is exactly 40 lower- or upper-case hex digits (a git sha1).
bool is_sha1_hex(std::string_view s);
// A file-name-safe slug: [A-Za-z0-9._-] kept, everything else becomes '_',
// never "." or "..", never empty. Used for directory names derived from
// attacker-controlled strings.
std::string safe_file_name(std::string_view s);
// RFC 3986 percent-encoding: every byte but the unreserved ones
// (A-Z a-z 0-9 - _ . ~) becomes %XX; fit for a path segment, a query
// value or a form field.
std::string percent_encode(std::string_view s);
// A Nix string literal ("...") with \, ", ${ escaped: safe to embed any text
// in a Nix expression.
std::string nix_string_literal(std::string_view s);
// Cuts s to at most max bytes without splitting a UTF-8 sequence; appends
// "…" when it cut.
std::string truncate_utf8(std::string_view s, std::size_t max);
// True if s is well-formed UTF-8 (no overlongs, surrogates or code points
// past U+10FFFF).
bool valid_utf8(std::string_view s);
// s with every byte that starts no well-formed UTF-8 sequence replaced by
// U+FFFD: the text a JSON encoder would send, so its length can be known.
std::string sanitize_utf8(std::string_view s);
// The last at most `max` bytes of s, starting at a character boundary.
std::string tail_utf8(std::string_view s, std::size_t max);
// The last `max_lines` lines of s.
std::string tail_lines(std::string_view s, std::size_t max_lines);
// A URL as logs and messages may show it, its credentials hidden:
// "https://u:p@host/x" -> "https://***@host/x". Other text is returned
// unchanged (an "@" in the path or an scp-style "git@host:" is kept).
std::string display_url(std::string_view url);
// `text` with every occurrence of `url` shown as display_url(url), for
// tools' messages that quote the URL they were given.
std::string hide_url(std::string text, const std::string& url);

}  // namespace flurry::text
