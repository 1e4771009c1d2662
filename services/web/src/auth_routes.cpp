// Signing in and out: the routes of Auth::handle.
#include <nlohmann/json.hpp>

#include "auth.hpp"
#include "auth_http.hpp"
#include "query.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"

namespace flurry::web {
namespace {

using json = nlohmann::json;

// Every answer here is about one browser: never stored by a cache.
http::Response answer(int status, std::string body, std::string content_type = "text/plain; charset=utf-8") {
  http::Response r{status, std::move(body), std::move(content_type)};
  r.headers["Cache-Control"] = "no-store";
  return r;
}

http::Response redirect(const std::string& to) {
  auto r = answer(302, "Redirecting.\n");
  r.headers["Location"] = to;
  return r;
}

std::string title(const std::string& forge) {
  return forge == "github" ? "GitHub" : forge == "gitea" ? "Gitea" : forge == "gitlab" ? "GitLab" : forge;
}

// An OAuth error code as the forge sent it back, only if it reads like one.
std::string error_code(const std::string& code) {
  if (code.empty() || code.size() > 64) return "an error";
  for (unsigned char c : code) {
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) return "an error";
  }
  return code;
}

// "/auth/<forge>/<action>" split; false for any other path.
bool auth_path(const std::string& path, std::string& forge, std::string& action) {
  if (!text::starts_with(path, "/auth/")) return false;
  auto parts = text::split(path.substr(6), '/');
  if (parts.size() != 2 || parts[0].empty()) return false;
  forge = parts[0];
  action = parts[1];
  return true;
}

}  // namespace

std::string Auth::redirect_uri(const std::string& forge) const { return config_.public_url + "/auth/" + forge + "/callback"; }

http::Response Auth::handle(const http::Request& req) {
  if (req.path == "/api/session") return req.method == "GET" ? session_answer(req) : answer(405, "method not allowed\n");
  if (req.path == "/auth/logout") return req.method == "POST" ? logout(req) : answer(405, "Sign out with POST.\n");
  std::string forge, action;
  if (!auth_path(req.path, forge, action) || (action != "login" && action != "callback")) return answer(404, "not found\n");
  if (req.method != "GET") return answer(405, "method not allowed\n");
  if (!find_sign_in(forge)) return answer(404, "Signing in with this forge is not configured.\n");
  return action == "login" ? login(forge, req) : callback(forge, req);
}

forge::OAuth* Auth::find_sign_in(const std::string& forge) const {
  auto it = ports_.sign_in.find(forge);
  return it == ports_.sign_in.end() ? nullptr : it->second;
}

// A fresh state, remembered server-side with `next` and the forge (single
// use, state_ttl), and in a cookie that only this browser's callback gets.
http::Response Auth::login(const std::string& forge, const http::Request& req) {
  const auto next = local_path(parse_query(req.query).value_or(Query{})["next"]);
  const auto state = crypto::random_hex(32);
  if (auto put = ports_.sessions.put_state(state, forge + "\n" + next, config_.state_ttl); !put) {
    log::warn("web.sign_in_unavailable", "cannot start a sign-in: the session store did not answer", {{"error", put.error().message}});
    return answer(503, "Signing in is not possible right now (the session store does not answer). Try again later.\n");
  }
  auto r = redirect(find_sign_in(forge)->authorize_url(redirect_uri(forge), state));
  const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(config_.state_ttl);
  r.headers["Set-Cookie"] = set_cookie({kStateCookie, state, "/auth/" + forge + "/callback", ttl, secure_});
  return r;
}

// The state must be one this service handed out (unused, not expired), for
// this forge, to this browser; then the code becomes a session.
http::Response Auth::callback(const std::string& forge, const http::Request& req) {
  auto q = parse_query(req.query).value_or(Query{});  // a malformed one has no state: refused below
  const auto state = q["state"];
  if (state.empty() || state.size() > 128) return answer(400, "This sign-in has no state. Sign in again.\n");
  auto taken = ports_.sessions.take_state(state);
  if (!taken) return answer(503, "Signing in is not possible right now (the session store does not answer). Try again later.\n");
  if (!taken->has_value()) return answer(400, "This sign-in is unknown, expired or already used. Sign in again.\n");
  const auto newline = (*taken)->find('\n');
  const auto started_for = (*taken)->substr(0, newline);
  const auto next = newline == std::string::npos ? "/" : local_path((*taken)->substr(newline + 1));
  if (started_for != forge) return answer(400, "This sign-in was started for another forge. Sign in again.\n");
  if (!crypto::constant_time_equal(cookie_value(req.header("cookie"), kStateCookie), state)) {
    return answer(400, "This sign-in was started in another browser. Sign in again.\n");
  }
  if (!q["error"].empty()) return answer(403, title(forge) + " did not let you sign in (" + error_code(q["error"]) + ").\n");
  if (q["code"].empty()) return answer(400, title(forge) + " sent no code. Sign in again.\n");
  return finish_sign_in(*find_sign_in(forge), q["code"], next, cookie_value(req.header("cookie"), kSessionCookie));
}

// A new session replaces the browser's earlier one, if any.
http::Response Auth::finish_sign_in(forge::OAuth& oauth, const std::string& code, const std::string& next,
                                    const std::string& old_session) {
  const auto& forge = oauth.forge();
  auto failed = [&](const Error& e) {
    log::warn("web.sign_in_failed", "signing in failed", {{"forge", forge}, {"error", e.message}});
    return answer(502, "Signing in with " + title(forge) + " failed: " + e.message + ". Try again.\n");
  };
  auto token = oauth.exchange_code(code, redirect_uri(forge));
  if (!token) return failed(token.error());
  auto user = oauth.user(*token);
  if (!user) return failed(user.error());
  state::Session s{crypto::random_hex(32), forge, user->login, user->name, user->id, *token, crypto::random_hex(32),
                   ports_.clock.now_ms(), ports_.clock.now_ms() + config_.session_ttl.count()};
  if (auto created = ports_.sessions.create(s, config_.session_ttl); !created) {
    log::warn("web.sign_in_unavailable", "cannot store a session", {{"error", created.error().message}});
    return answer(503, "Signing in is not possible right now (the session store does not answer). Try again later.\n");
  }
  if (plausible_session_id(old_session)) (void)ports_.sessions.remove(old_session);  // gone with its TTL otherwise
  log::info("web.signed_in", "signed in", {{"forge", forge}, {"login", user->login}});
  auto r = redirect(next);
  const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(config_.session_ttl);
  r.headers["Set-Cookie"] = set_cookie({kSessionCookie, s.id, "/", max_age, secure_});
  r.headers["Referrer-Policy"] = "no-referrer";
  return r;
}

http::Response Auth::logout(const http::Request& req) {
  auto viewer = viewer_of(req);
  if (viewer && !viewer->api_token) {
    if (!csrf_ok(req, *viewer)) return answer(403, "Signing out needs your session's X-Flurry-CSRF header.\n");
    if (auto removed = ports_.sessions.remove(viewer->session_id); !removed) {
      return answer(503, "Signing out is not possible right now (the session store does not answer). Try again later.\n");
    }
    log::info("web.signed_out", "signed out", {{"forge", viewer->forge}, {"login", viewer->login}});
  }
  auto r = answer(204, "");
  r.headers["Set-Cookie"] = set_cookie({kSessionCookie, "", "/", std::chrono::seconds(0), secure_});
  return r;
}

http::Response Auth::session_answer(const http::Request& req) {
  auto viewer = viewer_of(req);
  json body = {{"user", nullptr}, {"csrf", ""}, {"sign_in", json::array()}, {"token_auth", viewer && viewer->api_token}};
  if (viewer && !viewer->api_token) {
    body["user"] = {{"forge", viewer->forge}, {"login", viewer->login}, {"name", viewer->name}};
    body["csrf"] = viewer->csrf;
  }
  for (const auto& forge : sign_in_forges()) body["sign_in"].push_back({{"forge", forge}, {"url", "/auth/" + forge + "/login"}});
  return answer(200, body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

}  // namespace flurry::web
