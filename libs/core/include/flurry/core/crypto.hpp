#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace flurry::crypto {

// Lower-case hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Lower-case hex of SHA-256(data).
std::string sha256_hex(std::string_view data);
// `bytes` random bytes from OpenSSL's CSPRNG as lower-case hex (secrets,
// tokens, nonces). Throws std::runtime_error if the generator fails.
std::string random_hex(std::size_t bytes);
// Base64 with padding (RFC 4648 section 4), and the URL alphabet without
// padding (section 5, as JWTs use it).
std::string base64(std::string_view data);
std::string base64url(std::string_view data);
// The bytes of padded base64 text; nullopt if it is not base64.
std::optional<std::string> unbase64(std::string_view text);
// Compares in time that depends only on the lengths, not the contents.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace flurry::crypto
