// The Sessions port over Redis: one hash per session under the sha256 of
// its id, the access token sealed (AES-256-GCM) with a key only the id
// gives, and OAuth states as strings taken with GETDEL.
#include "flurry/state/redis_sessions.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "flurry/core/crypto.hpp"
#include "flurry/core/log.hpp"
#include "redis_client.hpp"

namespace flurry::state {
namespace {

constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;

// The bytes of lower-case hex (as crypto:: writes it).
std::string unhex(std::string_view hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  return out;
}

// The key that seals a session's access token: HMAC-SHA256 keyed with the
// session id, which Redis never holds.
std::string token_key(const std::string& session_id) {
  return unhex(crypto::hmac_sha256_hex(session_id, "flurry-session-access-token-v1"));
}

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
const unsigned char* bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// base64(nonce || ciphertext || tag); nullopt if OpenSSL fails.
std::optional<std::string> seal(const std::string& key, const std::string& plain) {
  const std::string nonce = unhex(crypto::random_hex(kNonceBytes));
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string out(plain.size() + kTagBytes, '\0');
  int len = 0, tail = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &len, bytes(plain), static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + len, &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, o + plain.size()) != 1) {
    return std::nullopt;
  }
  return crypto::base64(nonce + out);
}

// The plain text; nullopt when `sealed` was not sealed with `key` (or was altered).
std::optional<std::string> open(const std::string& key, const std::string& sealed) {
  auto raw = crypto::unbase64(sealed);
  if (!raw || raw->size() < kNonceBytes + kTagBytes) return std::nullopt;
  const std::string nonce = raw->substr(0, kNonceBytes);
  const std::string body = raw->substr(kNonceBytes, raw->size() - kNonceBytes - kTagBytes);
  std::string tag = raw->substr(raw->size() - kTagBytes);
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string out(body.size() + 1, '\0');
  int len = 0, tail = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), o, &len, bytes(body), static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), o + len, &tail) != 1) {
    return std::nullopt;
  }
  out.resize(static_cast<std::size_t>(len + tail));
  return out;
}

std::string ms_text(std::chrono::milliseconds ttl) { return std::to_string(std::max<std::int64_t>(1, ttl.count())); }

std::int64_t to_int64(const std::string& s) {
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

// A session from its HGETALL reply; nullopt when the token cannot be opened.
std::optional<Session> to_session(const std::string& id, const redis::Reply& r) {
  Session s;
  s.id = id;
  std::string sealed;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    const auto& f = r.elements[i].str;
    const auto& v = r.elements[i + 1].str;
    if (f == "forge") s.forge = v;
    else if (f == "login") s.login = v;
    else if (f == "name") s.name = v;
    else if (f == "user_id") s.forge_user_id = v;
    else if (f == "access_token") sealed = v;
    else if (f == "csrf") s.csrf = v;
    else if (f == "created_ms") s.created_ms = to_int64(v);
    else if (f == "expires_ms") s.expires_ms = to_int64(v);
  }
  auto token = open(token_key(id), sealed);
  if (!token) return std::nullopt;
  s.access_token = std::move(*token);
  return s;
}

class RedisSessions final : public Sessions {
 public:
  explicit RedisSessions(const RedisOptions& o) : prefix_(o.prefix), client_(o) {}

  Result<void> create(const Session& s, std::chrono::milliseconds ttl) override {
    if (s.id.empty()) return fail(Error::rejected("a session needs an id"));
    auto sealed = seal(token_key(s.id), s.access_token);
    if (!sealed) return fail(Error::transient("cannot encrypt the session's token"));
    const auto k = session_key(s.id);
    auto r = client_.pipeline({{"MULTI"},
                               {"DEL", k},
                               {"HSET", k, "forge", s.forge, "login", s.login, "name", s.name, "user_id", s.forge_user_id,
                                "access_token", *sealed, "csrf", s.csrf, "created_ms", std::to_string(s.created_ms),
                                "expires_ms", std::to_string(s.expires_ms)},
                               {"PEXPIRE", k, ms_text(ttl)},
                               {"EXEC"}});
    if (!r) return fail(r.error());
    if (r->empty() || !r->back().is_array()) return fail(Error::transient("redis: the session's transaction was not run"));
    return {};
  }

  Result<std::optional<Session>> find(const std::string& id) override {
    if (id.empty()) return std::optional<Session>();
    auto r = client_.command({"HGETALL", session_key(id)});
    if (!r) return fail(r.error());
    if (!r->is_array()) return fail(Error::transient("redis: HGETALL session answered no array"));
    if (r->elements.empty()) return std::optional<Session>();
    auto s = to_session(id, *r);
    if (!s) {
      log::warn("state.session_unreadable", "a stored session's token could not be decrypted; it counts as signed out");
      return std::optional<Session>();
    }
    log::register_secret(s->access_token);
    return s;
  }

  Result<void> remove(const std::string& id) override {
    auto r = client_.command({"DEL", session_key(id)});
    if (!r) return fail(r.error());
    return {};
  }

  Result<void> put_state(const std::string& state, const std::string& data, std::chrono::milliseconds ttl) override {
    auto r = client_.command({"SET", state_key(state), data, "PX", ms_text(ttl)});
    if (!r) return fail(r.error());
    return {};
  }

  Result<std::optional<std::string>> take_state(const std::string& state) override {
    auto r = client_.command({"GETDEL", state_key(state)});
    if (!r) return fail(r.error());
    if (r->is_nil()) return std::optional<std::string>();
    return std::optional<std::string>(r->str);
  }

 private:
  std::string session_key(const std::string& id) const { return prefix_ + ":session:" + crypto::sha256_hex(id); }
  std::string state_key(const std::string& state) const { return prefix_ + ":oauth-state:" + crypto::sha256_hex(state); }

  std::string prefix_;
  redis::Client client_;
};

}  // namespace

std::unique_ptr<Sessions> make_redis_sessions(const RedisOptions& options) {
  if (!options.password.empty()) log::register_secret(options.password);
  return std::make_unique<RedisSessions>(options);
}

}  // namespace flurry::state
