// Signing in with the faked forges, as they answer it: OAuth 2.0's
// authorization-code flow (GitHub and Gitea under /login/oauth, GitLab
// under /oauth), the signed-in user, and repository reads that honour
// privacy for users' tokens.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "fake_forge_state.hpp"
#include "fake_forge_wire.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"

namespace flurry::fakes::detail {
namespace {

using nlohmann::json;


http::Response redirect(std::string to, const std::vector<std::pair<std::string, std::string>>& params) {
  for (const auto& [k, v] : params) to += (to.find('?') == std::string::npos ? "?" : "&") + k + "=" + text::percent_encode(v);
  http::Response r{302, ""};
  r.headers["Location"] = to;
  return r;
}

bool has_scope(const std::string& scopes, std::initializer_list<std::string_view> any_of) {
  for (auto& s : text::split(text::trim(scopes), ' ')) {
    for (auto want : any_of) {
      if (s == want) return true;
    }
  }
  return false;
}

// Client id and secret from the body, else from HTTP Basic authentication.
std::pair<std::string, std::string> client_credentials(const http::Request& req, const json& p) {
  auto id = text_of(p, "client_id"), secret = text_of(p, "client_secret");
  auto auth = req.header("authorization");
  if (id.empty() && text::starts_with(auth, "Basic ")) {
    auto plain = crypto::unbase64(text::trim(auth.substr(6))).value_or("");
    auto colon = plain.find(':');
    if (colon != std::string::npos) {
      id = percent_decode(plain.substr(0, colon), true);
      secret = percent_decode(plain.substr(colon + 1), true);
    }
  }
  return {id, secret};
}

// GET authorize: the signed-in user grants a code at once.
http::Response authorize(ForgeState& s, const std::string& forge, const http::Request& req) {
  auto q = parse_query(req.query);
  auto app = s.oauth_apps.find(forge);
  if (app == s.oauth_apps.end() || q["client_id"] != app->second.client_id) {
    return forge == kGitHub ? message_answer(404, "Not Found") : message_answer(400, "Client ID not registered");
  }
  const auto redirect_uri = q["redirect_uri"];
  if (redirect_uri.empty()) return message_answer(400, "redirect_uri is required");
  const auto state = q["state"];
  if (forge != kGitHub && q["response_type"] != "code") {
    return redirect(redirect_uri, {{"error", "unsupported_response_type"}, {"state", state}});
  }
  auto user = s.signed_in.find(forge);
  if (user == s.signed_in.end()) {
    return redirect(redirect_uri, {{"error", "access_denied"}, {"error_description", "The user has denied your application access."},
                                   {"state", state}});
  }
  const auto code = crypto::random_hex(10);
  s.codes[code] = {forge, app->second.client_id, redirect_uri, q["scope"], user->second};
  return redirect(redirect_uri, {{"code", code}, {"state", state}});
}

// An OAuth error as each forge sends it: GitHub with 200 (form-encoded
// unless JSON was asked for), Gitea 400, GitLab 401 for the client and 400
// otherwise.
http::Response token_error(const std::string& forge, const http::Request& req, const std::string& error, const std::string& description) {
  if (forge == kGitHub) {
    if (req.header("accept").find("json") == std::string::npos) {
      return {200, "error=" + error + "&error_description=" + text::percent_encode(description), "application/x-www-form-urlencoded"};
    }
    return json_answer(200, {{"error", error}, {"error_description", description},
                             {"error_uri", "https://docs.github.com/apps/managing-oauth-apps/"
                                           "troubleshooting-oauth-app-access-token-request-errors"}});
  }
  return json_answer(forge == kGitLab && error == "invalid_client" ? 401 : 400, {{"error", error}, {"error_description", description}});
}

http::Response token_answer(ForgeState& s, const std::string& forge, const http::Request& req, const Grant& grant) {
  const std::string prefix = forge == kGitHub ? "gho_" : forge == kGitea ? "gta_" : "";
  const auto token = prefix + crypto::random_hex(20);
  s.user_tokens[token] = {forge, grant.scope, grant.user};
  if (forge == kGitHub && req.header("accept").find("json") == std::string::npos) {
    return {200, "access_token=" + token + "&scope=" + text::percent_encode(grant.scope) + "&token_type=bearer", "application/x-www-form-urlencoded"};
  }
  json body = {{"access_token", token}, {"token_type", forge == kGitLab ? "Bearer" : "bearer"}, {"scope", grant.scope}};
  if (forge != kGitHub) {
    body["expires_in"] = forge == kGitLab ? 7200 : 3600;
    body["refresh_token"] = crypto::random_hex(20);
  }
  return json_answer(200, body);
}

// POST token: the code, once, by its client, with its redirect_uri.
http::Response exchange(ForgeState& s, const std::string& forge, const http::Request& req) {
  auto p = body_params(req);
  if (p.is_discarded()) return token_error(forge, req, "invalid_request", "The request body could not be read.");
  auto [id, secret] = client_credentials(req, p);
  auto app = s.oauth_apps.find(forge);
  if (app == s.oauth_apps.end() || id != app->second.client_id || secret != app->second.client_secret) {
    return token_error(forge, req, forge == kGitHub ? "incorrect_client_credentials" : "invalid_client",
                       "The client_id and/or client_secret passed are incorrect.");
  }
  if (forge != kGitHub && text_of(p, "grant_type") != "authorization_code") {
    return token_error(forge, req, "unsupported_grant_type", "The authorization grant type is not supported.");
  }
  auto it = s.codes.find(text_of(p, "code"));
  if (it == s.codes.end() || it->second.forge != forge || it->second.client_id != id) {
    return token_error(forge, req, forge == kGitHub ? "bad_verification_code" : "invalid_grant", "The code passed is incorrect or expired.");
  }
  const Grant grant = it->second;
  s.codes.erase(it);  // used once, whatever follows
  const auto redirect_uri = text_of(p, "redirect_uri");
  if ((forge != kGitHub || !redirect_uri.empty()) && redirect_uri != grant.redirect_uri) {
    return token_error(forge, req, forge == kGitHub ? "redirect_uri_mismatch" : "invalid_grant",
                       "The redirect_uri does not match the one the code was granted for.");
  }
  return token_answer(s, forge, req, grant);
}

}  // namespace

bool is_oauth_path(const std::string& path) {
  return text::starts_with(path, "/login/oauth/") || text::starts_with(path, "/oauth/");
}

std::string forge_of_request(const ForgeState& s, const http::Request& req) {
  if (text::starts_with(req.path, "/oauth/")) return kGitLab;
  if (!text::starts_with(req.path, "/login/oauth/")) return forge_of_path(req.path);
  auto id = parse_query(req.query)["client_id"];
  if (id.empty()) id = client_credentials(req, body_params(req)).first;
  auto gitea = s.oauth_apps.find(kGitea);
  return gitea != s.oauth_apps.end() && !id.empty() && gitea->second.client_id == id ? kGitea : kGitHub;
}

http::Response serve_oauth(ForgeState& s, const std::string& forge, const http::Request& req) {
  const bool gitlab = forge == kGitLab;
  if (req.path == (gitlab ? "/oauth/authorize" : "/login/oauth/authorize") && req.method == "GET") return authorize(s, forge, req);
  if (req.path == (gitlab ? "/oauth/token" : "/login/oauth/access_token") && req.method == "POST") return exchange(s, forge, req);
  return message_answer(404, "Not Found");
}

http::Response repository_answer(const ForgeState& s, const std::string& forge, const Repository& repo, const UserToken* user,
                                 json body) {
  if (user) {
    if (forge == kGitLab && !has_scope(user->scope, {"read_api", "api"})) {
      return json_answer(403, {{"error", "insufficient_scope"},
                               {"error_description", "The request requires higher privileges than provided by the access token."},
                               {"scope", "api read_api"}});
    }
    // An OAuth App's token reads private repositories only with the repo scope.
    const bool scoped = forge != kGitHub || !s.app.id.empty() || has_scope(user->scope, {"repo"});
    if (s.is_private(forge, repo.owner, repo.repo) && (!scoped || !s.user_can_read(forge, repo.owner, repo.repo, user->user.login))) {
      return forge == kGitLab ? message_answer(404, "404 Project Not Found")
             : forge == kGitea ? message_answer(404, "The target couldn't be found.")
                               : message_answer(404, "Not Found");
    }
  }
  return json_answer(200, body);
}

http::Response user_answer(const std::string& forge, const UserToken* user) {
  if (!user) return forge == kGitLab ? message_answer(401, "401 Unauthorized") : message_answer(401, "Requires authentication");
  if (forge == kGitLab && !has_scope(user->scope, {"read_user", "read_api", "api"})) {
    return json_answer(403, {{"error", "insufficient_scope"}, {"scope", "api read_api read_user"}});
  }
  const User& u = user->user;
  const json name = u.name.empty() ? json(nullptr) : json(u.name);
  if (forge == kGitHub) return json_answer(200, {{"login", u.login}, {"id", u.id}, {"name", name}, {"type", "User"}});
  if (forge == kGitea) {
    return json_answer(200, {{"id", u.id}, {"login", u.login}, {"username", u.login}, {"full_name", u.name},
                             {"email", u.login + "@example.org"}});
  }
  return json_answer(200, {{"id", u.id}, {"username", u.login}, {"name", u.name.empty() ? u.login : u.name}, {"state", "active"}});
}

}  // namespace flurry::fakes::detail
