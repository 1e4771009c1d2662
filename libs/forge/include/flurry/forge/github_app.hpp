#pragma once
// GitHub credentials for API calls: a fixed token, or a GitHub App's
// installation access tokens (fetched with an RS256-signed JWT, cached per
// installation and refreshed before they expire). Tokens are registered
// with the logger for redaction and never appear in error messages.
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "flurry/core/clock.hpp"
#include "flurry/core/error.hpp"
#include "flurry/http/http.hpp"

namespace flurry::forge {

class GitHubTokens {
 public:
  virtual ~GitHubTokens() = default;
  // The token to use for calls about owner/repo. `installation`: the App
  // installation a webhook named for it (0: not known). Transient error:
  // try later; rejected: the app cannot reach this repository.
  virtual Result<std::string> token_for(const std::string& owner, const std::string& repo, std::int64_t installation) = 0;
};

// A personal access token or any fixed token.
class FixedToken final : public GitHubTokens {
 public:
  explicit FixedToken(std::string token);
  Result<std::string> token_for(const std::string&, const std::string&, std::int64_t) override { return token_; }

 private:
  std::string token_;
};

// The JWT a GitHub App authenticates as itself with: RS256 over
// {"iat": now - 60, "exp": now + 540, "iss": app_id} (GitHub allows at most
// ten minutes and recommends backdating iat for clock drift).
// `private_key_pem` is the app's PEM private key (PKCS#1 or PKCS#8).
Result<std::string> github_app_jwt(const std::string& app_id, const std::string& private_key_pem, std::int64_t now_s);

// Seconds since 1970 of an ISO 8601 UTC time as GitHub writes it
// ("2016-07-11T22:14:10Z"); nullopt when it is not one.
std::optional<std::int64_t> parse_github_time(const std::string& s);

struct GitHubAppOptions {
  std::string api_url = "https://api.github.com";
  std::string app_id;
  std::string private_key_pem;
  // A token is replaced this long before it expires (they last an hour).
  std::chrono::seconds refresh_before{std::chrono::minutes(5)};
  // A failed installation look-up is answered from memory this long before
  // GitHub is asked again.
  std::chrono::seconds failed_lookup_ttl{std::chrono::minutes(1)};
};

// Installation tokens of a GitHub App. The installation is the one the
// webhook named when there is one; else GET
// /repos/{owner}/{repo}/installation finds it (remembered per repository;
// a failure too, for failed_lookup_ttl). POST
// /app/installations/{id}/access_tokens makes a token (reused until
// refresh_before its expiry); a named installation GitHub does not know
// (the App was reinstalled) falls back to the look-up. Thread-safe.
class GitHubAppTokens final : public GitHubTokens {
 public:
  GitHubAppTokens(http::Client& client, Clock& clock, GitHubAppOptions options);
  Result<std::string> token_for(const std::string& owner, const std::string& repo, std::int64_t installation) override;
  // The token of installation `installation` (the id GET /app/installations
  // lists), from the same cache as token_for's.
  Result<std::string> token_for_installation(std::int64_t installation);
  // A fresh JWT to call /app/* endpoints as the app itself.
  Result<std::string> app_jwt();
  // The API base URL, without trailing slashes.
  const std::string& api_url() const { return options_.api_url; }

 private:
  // The installation of owner/repo: remembered, or looked up (a failure
  // remembered for failed_lookup_ttl).
  Result<std::int64_t> installation_for(const std::string& owner, const std::string& repo);
  Result<std::int64_t> look_up_installation(const std::string& owner, const std::string& repo);
  Result<std::string> new_token(std::int64_t installation);
  Result<http::Response> call(const std::string& method, const std::string& path, const std::string& bearer);

  struct Token {
    std::string value;
    std::int64_t expires_s = 0;
  };
  http::Client& client_;
  Clock& clock_;
  GitHubAppOptions options_;
  std::mutex mu_;
  std::map<std::string, std::int64_t> installations_;  // "owner/repo" -> installation id
  struct FailedLookup {
    Error error;
    std::int64_t until_ms = 0;
  };
  std::map<std::string, FailedLookup> failed_lookups_;  // "owner/repo" -> why, until when
  std::map<std::int64_t, Token> tokens_;               // installation id -> token
};

}  // namespace flurry::forge
