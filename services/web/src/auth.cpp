// The access rules: who asks (viewer_of), who may read and act, CSRF.
// Signing in is auth_routes.cpp.
#include "auth.hpp"

#include "auth_http.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"

namespace flurry::web {
namespace {

template <typename T>
T* find(const std::map<std::string, T*>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : it->second;
}

std::string cache_key(const msg::Repo& repo, const std::string& login = "") {
  std::string k = repo.forge;
  for (const auto* part : {&repo.owner, &repo.name, &login}) k += std::string(1, '\0') + *part;
  return k;
}

}  // namespace

Auth::Auth(AuthPorts ports, AuthConfig config)
    : ports_(std::move(ports)),
      config_(std::move(config)),
      secure_(config_.cookie_secure.value_or(text::starts_with(text::to_lower(config_.public_url), "https://"))),
      visibility_cache_(config_.cache_max),
      read_cache_(config_.cache_max),
      write_cache_(config_.cache_max) {
  while (!config_.public_url.empty() && config_.public_url.back() == '/') config_.public_url.pop_back();
}

std::vector<std::string> Auth::sign_in_forges() const {
  std::vector<std::string> out;
  for (const auto& [name, oauth] : ports_.sign_in) {
    if (oauth) out.push_back(name);
  }
  return out;
}

std::optional<Viewer> Auth::viewer_of(const http::Request& req) {
  if (!config_.api_token.empty() && crypto::constant_time_equal(req.header("authorization"), "Bearer " + config_.api_token)) {
    Viewer v;
    v.name = "the API token";
    v.api_token = true;
    return v;
  }
  const auto id = cookie_value(req.header("cookie"), kSessionCookie);
  if (!plausible_session_id(id)) return std::nullopt;
  auto found = ports_.sessions.find(id);
  if (!found) {
    // Per request, so debug: the store's adapter logs losing Redis once.
    log::debug("web.sessions_unavailable", "cannot read sessions: the request counts as signed out", {{"error", found.error().message}});
    return std::nullopt;
  }
  if (!found->has_value() || (**found).expires_ms <= ports_.clock.now_ms()) return std::nullopt;
  const auto& s = **found;
  return Viewer{s.forge, s.login, s.name, false, s.csrf, s.id, s.access_token};
}

bool Auth::csrf_ok(const http::Request& req, const Viewer& viewer) const {
  if (viewer.api_token) return true;
  return !viewer.csrf.empty() && crypto::constant_time_equal(req.header("x-flurry-csrf"), viewer.csrf);
}

template <typename V>
void Auth::remember(TtlCache<Result<V>>& cache, const std::string& key, const Result<V>& answer) {
  const auto ttl = answer.has_value() ? config_.cache_ttl : config_.error_cache_ttl;
  if (ttl.count() > 0) cache.put(key, answer, ports_.clock.now_ms() + ttl.count());
}

Result<forge::Visibility> Auth::visibility_of(forge::RepoVisibility& source, const msg::Repo& repo) {
  const auto key = cache_key(repo);
  if (auto hit = visibility_cache_.get(key, ports_.clock.now_ms())) return *hit;
  auto answer = source.visibility(repo.owner, repo.name);
  remember(visibility_cache_, key, answer);
  return answer;
}

Result<bool> Auth::user_can_read(forge::OAuth& oauth, const Viewer& viewer, const msg::Repo& repo) {
  const auto key = cache_key(repo, viewer.login);
  if (auto hit = read_cache_.get(key, ports_.clock.now_ms())) return *hit;
  auto answer = oauth.can_read(viewer.access_token, repo.owner, repo.name);
  remember(read_cache_, key, answer);
  return answer;
}

Result<bool> Auth::is_public(const msg::Repo& repo) {
  auto* source = find(ports_.visibility, repo.forge);
  if (!source) return true;
  auto visibility = visibility_of(*source, repo);
  if (!visibility) return fail(visibility.error());
  return *visibility == forge::Visibility::kPublic;
}

Result<bool> Auth::may_read(const std::optional<Viewer>& viewer, const msg::Repo& repo) {
  if (viewer && viewer->api_token) return true;
  auto* source = find(ports_.visibility, repo.forge);
  if (!source) return true;  // nothing to ask: Flurry itself reads it without credentials
  auto visibility = visibility_of(*source, repo);
  if (!visibility) {
    return fail(Error{visibility.error().code, "cannot tell whether " + repo.full_name() + " is public: " + visibility.error().message});
  }
  if (*visibility == forge::Visibility::kPublic) return true;
  if (!viewer || viewer->forge != repo.forge) return false;
  auto* oauth = find(ports_.sign_in, repo.forge);
  if (!oauth) return false;
  return user_can_read(*oauth, *viewer, repo);
}

Result<bool> Auth::may_act(const std::optional<Viewer>& viewer, const msg::Repo& repo) {
  if (!viewer) return false;
  if (viewer->api_token) return true;
  if (viewer->forge != repo.forge) return false;
  auto* permissions = find(ports_.permissions, repo.forge);
  if (!permissions) return false;
  const auto key = cache_key(repo, viewer->login);
  if (auto hit = write_cache_.get(key, ports_.clock.now_ms())) return *hit;
  auto answer = permissions->can_write(repo.owner, repo.name, viewer->login);
  if (!answer) {
    answer = fail(Error{answer.error().code, "cannot tell whether you may write to " + repo.full_name() + ": " + answer.error().message});
  }
  remember(write_cache_, key, answer);
  return answer;
}

}  // namespace flurry::web
