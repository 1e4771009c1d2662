// The authorization-code flow of GitHub, Gitea/Forgejo and GitLab, and the
// reads made with a signed-in user's token. One class: the forges differ
// only in paths, parameters and field names.
#include "flurry/forge/oauth.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/forge/github_status.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {
namespace {

using json = nlohmann::json;
enum class Kind { kGitHub, kGitea, kGitLab };

Kind kind_of(const std::string& forge) {
  if (forge == "github") return Kind::kGitHub;
  if (forge == "gitea") return Kind::kGitea;
  if (forge == "gitlab") return Kind::kGitLab;
  throw std::invalid_argument("no OAuth sign-in for forge '" + forge + "' (github, gitea, gitlab)");
}

std::string without_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// key=value&... with both percent-encoded (a form body or a query).
std::string encoded(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) out += (out.empty() ? "" : "&") + path_segment(k) + "=" + path_segment(v);
  return out;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A numeric or string id as text; "" otherwise.
std::string id_text(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_number_integer()) return std::to_string(it->get<std::int64_t>());
  if (it->is_number_unsigned()) return std::to_string(it->get<std::uint64_t>());
  return it->is_string() ? it->get<std::string>() : "";
}

// The OAuth error code of a refusal ("bad_verification_code",
// "invalid_grant"), only when it reads like one: the rest of a forge's
// answer is not repeated.
std::string oauth_error(const json& j) {
  if (!j.is_object()) return "";
  auto code = str(j, "error");
  if (code.empty() || code.size() > 64) return "";
  for (char c : code) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return "";
  }
  return code;
}

// A user name fit for cache keys, URLs and pages: some bytes, no control characters.
bool plausible_login(const std::string& login) {
  if (login.empty() || login.size() > 255) return false;
  for (unsigned char c : login) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

class ForgeOAuth final : public OAuth {
 public:
  ForgeOAuth(http::Client& client, OAuthOptions o)
      : client_(client), kind_(kind_of(o.forge)), o_(std::move(o)) {
    o_.oauth_url = without_trailing_slashes(o_.oauth_url);
    o_.api_url = without_trailing_slashes(o_.api_url);
  }

  const std::string& forge() const override { return o_.forge; }

  std::string authorize_url(const std::string& redirect_uri, const std::string& state) const override {
    std::vector<std::pair<std::string, std::string>> q = {{"client_id", o_.client_id}, {"redirect_uri", redirect_uri}};
    if (kind_ != Kind::kGitHub) q.emplace_back("response_type", "code");
    q.emplace_back("state", state);
    if (!o_.scope.empty()) q.emplace_back("scope", o_.scope);
    const char* path = kind_ == Kind::kGitLab ? "/oauth/authorize" : "/login/oauth/authorize";
    return o_.oauth_url + path + "?" + encoded(q);
  }

  Result<std::string> exchange_code(const std::string& code, const std::string& redirect_uri) override;
  Result<ForgeUser> user(const std::string& access_token) override;
  Result<bool> can_read(const std::string& access_token, const std::string& owner, const std::string& repo) override;

 private:
  std::string title() const { return kind_ == Kind::kGitHub ? "GitHub" : kind_ == Kind::kGitea ? "Gitea" : "GitLab"; }
  std::map<std::string, std::string> headers(const std::string& token) const {
    if (kind_ == Kind::kGitHub) return github_headers(token);
    return {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}, {"User-Agent", "flurry"}};
  }
  Result<http::Response> get(const std::string& url, const std::string& token) {
    return client_.send({.method = "GET", .url = url, .headers = headers(token), .timeout = o_.timeout});
  }
  // kTransient when the answer is none, a 5xx or a rate limit: asking later may work.
  std::optional<Error> unavailable(const Result<http::Response>& r, const std::string& doing) const {
    if (!r) return Error::transient(title() + " did not answer " + doing);
    if (read_answer(r, title(), 0).retry) {
      return Error::transient(title() + " could not answer " + doing + " now (HTTP " + std::to_string(r->status) + ")");
    }
    return std::nullopt;
  }

  http::Client& client_;
  Kind kind_;
  OAuthOptions o_;
};

Result<std::string> ForgeOAuth::exchange_code(const std::string& code, const std::string& redirect_uri) {
  std::vector<std::pair<std::string, std::string>> params = {
      {"client_id", o_.client_id}, {"client_secret", o_.client_secret}, {"code", code}, {"redirect_uri", redirect_uri}};
  if (kind_ != Kind::kGitHub) params.emplace_back("grant_type", "authorization_code");
  const char* path = kind_ == Kind::kGitLab ? "/oauth/token" : "/login/oauth/access_token";
  auto r = client_.send({.method = "POST",
                         .url = o_.oauth_url + path,
                         .headers = {{"Accept", "application/json"},
                                     {"Content-Type", "application/x-www-form-urlencoded"},
                                     {"User-Agent", "flurry"}},
                         .body = encoded(params),
                         .timeout = o_.timeout});
  if (auto e = unavailable(r, "the sign-in")) return fail(*e);
  auto j = json::parse(r->body, nullptr, false);
  // GitHub refuses with a 200 whose body says "error"; the others with a 4xx.
  if (r->status / 100 != 2 || (j.is_object() && j.contains("error"))) {
    auto why = oauth_error(j);
    return fail(Error::rejected(title() + " refused the sign-in (" + (why.empty() ? "HTTP " + std::to_string(r->status) : why) + ")"));
  }
  if (!j.is_object()) return fail(Error::rejected(title() + " answered the sign-in with something that is not a JSON object"));
  auto token = str(j, "access_token");
  if (token.empty()) return fail(Error::rejected(title() + "'s answer to the sign-in has no access_token"));
  log::register_secret(token);
  const auto type = text::to_lower(str(j, "token_type"));
  if (!type.empty() && type != "bearer") return fail(Error::rejected(title() + " gave a token of a type other than bearer"));
  return token;
}

Result<ForgeUser> ForgeOAuth::user(const std::string& access_token) {
  const char* path = kind_ == Kind::kGitHub ? "/user" : kind_ == Kind::kGitea ? "/api/v1/user" : "/api/v4/user";
  auto r = get(o_.api_url + path, access_token);
  if (auto e = unavailable(r, "who signed in")) return fail(*e);
  if (r->status / 100 != 2) {
    return fail(Error::rejected(title() + " did not accept the sign-in's token (HTTP " + std::to_string(r->status) + ")"));
  }
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object()) return fail(Error::rejected(title() + " answered who signed in with something that is not a JSON object"));
  ForgeUser u;
  u.id = id_text(j, "id");
  u.login = str(j, kind_ == Kind::kGitLab ? "username" : "login");
  if (u.login.empty() && kind_ == Kind::kGitea) u.login = str(j, "username");
  u.name = str(j, kind_ == Kind::kGitea ? "full_name" : "name");
  if (u.name.empty()) u.name = u.login;
  if (u.id.empty() || !plausible_login(u.login)) return fail(Error::rejected(title() + " did not say who signed in (no id or login)"));
  return u;
}

Result<bool> ForgeOAuth::can_read(const std::string& access_token, const std::string& owner, const std::string& repo) {
  std::string url;
  if (kind_ == Kind::kGitHub) url = o_.api_url + "/repos/" + path_segment(owner) + "/" + path_segment(repo);
  else if (kind_ == Kind::kGitea) url = o_.api_url + "/api/v1/repos/" + path_segment(owner) + "/" + path_segment(repo);
  else url = o_.api_url + "/api/v4/projects/" + path_segment(owner + "/" + repo);
  auto r = get(url, access_token);
  if (auto e = unavailable(r, "whether you can read " + owner + "/" + repo)) return fail(*e);
  if (r->status / 100 == 2) return true;
  if (r->status == 404 || r->status == 403) return false;
  if (r->status == 401) return fail(Error::rejected(title() + " no longer accepts your sign-in: sign in again"));
  return fail(Error::rejected(title() + " answered HTTP " + std::to_string(r->status) + " when asked whether you can read " + owner + "/" +
                              repo));
}

}  // namespace

std::string default_oauth_scope(const std::string& forge) {
  if (forge == "github") return "read:user";
  if (forge == "gitlab") return "read_api";
  return "";
}

std::unique_ptr<OAuth> make_oauth(http::Client& client, OAuthOptions options) {
  return std::make_unique<ForgeOAuth>(client, std::move(options));
}

std::optional<OAuthOptions> oauth_options(const Config& c, const std::string& forge, const std::string& client_section) {
  const auto id = c.get_string(client_section + ".client_id", "");
  if (id.empty()) return std::nullopt;
  kind_of(forge);  // throws for forges without sign-in
  OAuthOptions o;
  o.forge = forge;
  o.client_id = id;
  if (!c.has(client_section + ".client_secret_file")) throw ConfigError(client_section + ".client_secret_file is required with client_id");
  o.client_secret = read_secret_file(c.get_string(client_section + ".client_secret_file", ""));
  o.scope = c.get_string(client_section + ".scope", default_oauth_scope(forge));
  if (forge == "github") {
    const std::string gh = !c.keys("github").empty() || c.keys("reporter.github").empty() ? "github" : "reporter.github";
    o.api_url = without_trailing_slashes(c.get_string(gh + ".api_url", "https://api.github.com"));
    // github.com signs in on its web host; Enterprise serves the API under /api/v3 of it.
    std::string web = o.api_url == "https://api.github.com" ? "https://github.com" : o.api_url;
    if (text::ends_with(web, "/api/v3")) web.resize(web.size() - 7);
    o.oauth_url = c.get_string(gh + ".oauth_url", web);
  } else {
    if (forge == "gitea" && !c.has("gitea.api_url")) throw ConfigError(client_section + " needs [gitea] api_url");
    o.api_url = without_trailing_slashes(c.get_string(forge + ".api_url", "https://gitlab.com"));
    o.oauth_url = c.get_string(forge + ".oauth_url", o.api_url);
  }
  return o;
}

}  // namespace flurry::forge
