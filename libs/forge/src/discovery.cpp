// Project discovery's forge-neutral parts: which repositories are
// projects, whether a hook needs writing, and the JSON call every
// discovery client makes.
#include "flurry/forge/discovery.hpp"

#include <algorithm>

#include "api_call.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"

namespace flurry::forge {

namespace detail {

Result<JsonAnswer> call_json(http::Client& client, const std::string& method, const std::string& url,
                             std::map<std::string, std::string> headers, const std::string& body, std::string_view forge) {
  headers.emplace("Accept", "application/json");
  headers.emplace("User-Agent", "flurry");
  if (!body.empty()) headers.emplace("Content-Type", "application/json");
  auto r = client.send({.method = method, .url = url, .headers = std::move(headers), .body = body, .timeout = std::chrono::seconds(30)});
  if (!r) return fail(Error::transient(std::string(forge) + " did not answer: " + r.error().message));
  if (r->status / 100 != 2) {
    const auto lower = text::to_lower(r->body);
    const bool rate_limited =
        r->status == 429 || (r->status == 403 && (r->header("x-ratelimit-remaining") == "0" || lower.find("rate limit") != std::string::npos));
    auto e = std::string(forge) + " answered " + std::to_string(r->status) + ": " + text::truncate_utf8(r->body, 200);
    return fail(r->status >= 500 || rate_limited ? Error::transient(e) : Error::rejected(e));
  }
  JsonAnswer a;
  if (!text::trim(r->body).empty()) {
    a.body = nlohmann::json::parse(r->body, nullptr, false);
    if (a.body.is_discarded()) return fail(Error::transient(std::string(forge) + " answered something that is not JSON"));
  }
  a.response = std::move(*r);
  return a;
}

std::string str_of(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::int64_t int_of(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

std::vector<std::string> strings_of(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.is_object()) return out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace detail

namespace {

bool contains_folded(const std::vector<std::string>& list, const std::string& value) {
  const auto want = text::to_lower(value);
  return std::any_of(list.begin(), list.end(), [&](const std::string& s) { return text::to_lower(s) == want; });
}

Error not_supported(const std::string& forge) { return Error::rejected(forge + " has no repository hooks to manage"); }

}  // namespace

bool allowlisted(const RepoFilter& f, const std::string& owner, const std::string& name) {
  if (f.user_allowlist.empty() && f.repo_allowlist.empty()) return true;
  return contains_folded(f.user_allowlist, owner) || contains_folded(f.repo_allowlist, owner + "/" + name);
}

bool has_topic(const RepoFilter& f, const std::vector<std::string>& topics) { return f.topic.empty() || contains_folded(topics, f.topic); }

std::vector<DiscoveredRepo> filter_repos(const RepoFilter& f, std::vector<DiscoveredRepo> repos) {
  std::vector<DiscoveredRepo> out;
  for (auto& r : repos) {
    if (has_topic(f, r.topics) && allowlisted(f, r.owner, r.name)) out.push_back(std::move(r));
  }
  return out;
}

std::string hook_fingerprint(const HookSpec& spec) { return crypto::hmac_sha256_hex(spec.secret, "flurry-hook-v1\n" + spec.url); }

HookDecision decide_hook(const std::vector<RepoHook>& hooks, const HookSpec& spec, const std::vector<std::string>& events,
                         const std::optional<ManagedHook>& remembered) {
  const RepoHook* ours = nullptr;
  if (remembered && remembered->id != 0) {
    for (const auto& h : hooks) {
      if (h.id == remembered->id) ours = &h;
    }
  }
  if (!ours) {
    for (const auto& h : hooks) {
      if (h.url == spec.url) {
        ours = &h;
        break;
      }
    }
  }
  if (!ours) return {HookAction::kCreate, 0, "no hook delivers to " + spec.url};
  auto update = [&](std::string why) { return HookDecision{HookAction::kUpdate, ours->id, std::move(why)}; };
  if (ours->url != spec.url) return update("its URL changed");
  if (!remembered || remembered->id != ours->id) return update("its secret is not known to be the current one");
  if (remembered->fingerprint != hook_fingerprint(spec)) return update("the secret or URL changed");
  if (!ours->active) return update("it is inactive");
  for (const auto& e : events) {
    if (std::find(ours->events.begin(), ours->events.end(), e) == ours->events.end()) return update("it does not deliver " + e);
  }
  return {HookAction::kNone, ours->id, "up to date"};
}

Result<std::vector<RepoHook>> ProjectSource::list_hooks(const DiscoveredRepo&) { return fail(not_supported(forge())); }
Result<std::int64_t> ProjectSource::create_hook(const DiscoveredRepo&, const HookSpec&) { return fail(not_supported(forge())); }
Result<void> ProjectSource::update_hook(const DiscoveredRepo&, std::int64_t, const HookSpec&) { return fail(not_supported(forge())); }

}  // namespace flurry::forge
