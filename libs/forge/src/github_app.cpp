#include "flurry/forge/github_app.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "flurry/core/crypto.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/forge/github_status.hpp"

namespace flurry::forge {
namespace {

using json = nlohmann::json;


// What GitHub's answer says, for an error message (no token in it: GitHub
// never echoes the Authorization header).
std::string describe(const http::Response& r) {
  return "GitHub answered " + std::to_string(r.status) + ": " + text::truncate_utf8(r.body, 300);
}

}  // namespace

FixedToken::FixedToken(std::string token) : token_(std::move(token)) { log::register_secret(token_); }

Result<std::string> github_app_jwt(const std::string& app_id, const std::string& private_key_pem, std::int64_t now_s) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())),
                                                &BIO_free);
  if (!bio) return fail(Error::transient("github app: cannot allocate"));
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!key) return fail(Error::rejected("github app: the private key is not a PEM private key"));
  if (EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) return fail(Error::rejected("github app: the private key is not an RSA key"));
  const json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  const json claims = {{"iat", now_s - 60}, {"exp", now_s + 540}, {"iss", app_id}};
  const std::string signing_input = crypto::base64url(header.dump()) + "." + crypto::base64url(claims.dump());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1) {
    return fail(Error::transient("github app: cannot sign the JWT"));
  }
  std::string signature(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1) {
    return fail(Error::transient("github app: cannot sign the JWT"));
  }
  signature.resize(len);
  return signing_input + "." + crypto::base64url(signature);
}

std::optional<std::int64_t> parse_github_time(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

GitHubAppTokens::GitHubAppTokens(http::Client& client, Clock& clock, GitHubAppOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {
  while (!options_.api_url.empty() && options_.api_url.back() == '/') options_.api_url.pop_back();
}

Result<http::Response> GitHubAppTokens::call(const std::string& method, const std::string& path, const std::string& bearer) {
  auto r = client_.send({.method = method,
                         .url = options_.api_url + path,
                         .headers = github_headers(bearer),
                         .timeout = std::chrono::seconds(30)});
  if (!r) return fail(Error::transient("github app: " + r.error().message));
  return r;
}

Result<std::int64_t> GitHubAppTokens::installation_for(const std::string& owner, const std::string& repo) {
  const std::string key = owner + "/" + repo;
  {
    std::lock_guard lock(mu_);
    if (auto it = installations_.find(key); it != installations_.end()) return it->second;
    if (auto it = failed_lookups_.find(key); it != failed_lookups_.end() && clock_.now_ms() < it->second.until_ms) {
      return fail(it->second.error);
    }
  }
  auto found = look_up_installation(owner, repo);
  std::lock_guard lock(mu_);
  if (!found) {
    failed_lookups_[key] = {found.error(), clock_.now_ms() + options_.failed_lookup_ttl.count() * 1000};
    return fail(found.error());
  }
  failed_lookups_.erase(key);
  return installations_[key] = *found;
}

Result<std::int64_t> GitHubAppTokens::look_up_installation(const std::string& owner, const std::string& repo) {
  const std::string key = owner + "/" + repo;
  auto jwt = app_jwt();
  if (!jwt) return fail(jwt.error());
  auto r = call("GET", "/repos/" + path_segment(owner) + "/" + path_segment(repo) + "/installation", *jwt);
  if (!r) return fail(r.error());
  if (r->status == 404) return fail(Error::rejected("github app: not installed on " + key));
  if (r->status != 200) {
    auto e = describe(*r);
    return fail(r->status >= 500 || r->status == 429 ? Error::transient("github app: " + e) : Error::rejected("github app: " + e));
  }
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_number_integer()) {
    return fail(Error::transient("github app: no installation id for " + key));
  }
  return j["id"].get<std::int64_t>();
}

Result<std::string> GitHubAppTokens::new_token(std::int64_t installation) {
  auto jwt = app_jwt();
  if (!jwt) return fail(jwt.error());
  auto r = call("POST", "/app/installations/" + std::to_string(installation) + "/access_tokens", *jwt);
  if (!r) return fail(r.error());
  if (r->status != 201 && r->status != 200) {
    auto e = describe(*r);
    return fail(r->status >= 500 || r->status == 429 ? Error::transient("github app: " + e) : Error::rejected("github app: " + e));
  }
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("token") || !j["token"].is_string() || !j.contains("expires_at") || !j["expires_at"].is_string()) {
    return fail(Error::transient("github app: the access token answer has no token or expiry"));
  }
  auto expires = parse_github_time(j["expires_at"].get<std::string>());
  if (!expires) return fail(Error::transient("github app: cannot read the token's expiry"));
  Token t{j["token"].get<std::string>(), *expires};
  log::register_secret(t.value);
  std::lock_guard lock(mu_);
  tokens_[installation] = t;
  return t.value;
}

Result<std::string> GitHubAppTokens::token_for(const std::string& owner, const std::string& repo, std::int64_t named) {
  if (named > 0) {
    auto token = token_for_installation(named);
    // GitHub knows it: it is this repository's from now on. Refused (the
    // App was reinstalled under another id): the look-up decides.
    if (token || token.error().code == ErrorCode::kTransient) {
      if (token) {
        std::lock_guard lock(mu_);
        installations_[owner + "/" + repo] = named;
      }
      return token;
    }
  }
  auto installation = installation_for(owner, repo);
  if (!installation) return fail(installation.error());
  return token_for_installation(*installation);
}

Result<std::string> GitHubAppTokens::token_for_installation(std::int64_t installation) {
  {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(installation);
    if (it != tokens_.end() && clock_.now_ms() / 1000 + options_.refresh_before.count() < it->second.expires_s) return it->second.value;
  }
  return new_token(installation);
}

Result<std::string> GitHubAppTokens::app_jwt() {
  return github_app_jwt(options_.app_id, options_.private_key_pem, clock_.now_ms() / 1000);
}

}  // namespace flurry::forge
