#include "flurry/fakes/fake_github.hpp"

#include <nlohmann/json.hpp>

#include <ctime>

#include "flurry/core/child.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/test/jwt.hpp"

namespace flurry::fakes {

FakeGitHub::FakeGitHub() {
  http::ServerOptions o;
  o.port = free_tcp_port();
  server_ = http::make_server(o);
  server_->route("POST", "/repos/*", [this](const http::Request& r) { return handle(r); });
  server_->route("POST", "/app/*", [this](const http::Request& r) { return handle(r); });
  server_->route("GET", "/*", [this](const http::Request& r) { return handle(r); });
  server_->start();
}

FakeGitHub::~FakeGitHub() { server_->stop(); }

std::string FakeGitHub::url() const { return server_->url(); }

http::Response FakeGitHub::handle(const http::Request& req) {
  std::lock_guard lock(mu_);
  calls_.push_back({req.method, req.path, req.headers, req.body});
  auto parts = text::split(req.path, '/');
  const auto unauthorized = http::Response{401, R"({"message":"Bad credentials"})", "application/json"};
  // GET /repos/{owner}/{repo}/installation (as the app)
  if (!app_id_.empty() && req.method == "GET" && parts.size() == 5 && parts[1] == "repos" && parts[4] == "installation") {
    if (!jwt_ok(req)) return unauthorized;
    return {200, nlohmann::json{{"id", installation_}}.dump(), "application/json"};
  }
  // POST /app/installations/{id}/access_tokens (as the app)
  if (!app_id_.empty() && req.method == "POST" && parts.size() == 5 && parts[1] == "app" && parts[2] == "installations" &&
      parts[4] == "access_tokens") {
    if (!jwt_ok(req)) return unauthorized;
    if (parts[3] != std::to_string(installation_)) return {404, R"({"message":"Not Found"})", "application/json"};
    issued_.push_back("ghs_fake" + crypto::random_hex(16));
    std::time_t t = std::time(nullptr) + 3600;
    char expires[32];
    std::strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return {201, nlohmann::json{{"token", issued_.back()}, {"expires_at", expires}}.dump(), "application/json"};
  }
  // POST /repos/{owner}/{repo}/statuses/{sha}
  if (req.method == "POST" && parts.size() == 6 && parts[1] == "repos" && parts[4] == "statuses") {
    if (!app_id_.empty()) {
      auto auth = req.header("authorization");
      bool issued = false;
      for (const auto& t : issued_) issued = issued || auth == "Bearer " + t;
      if (!issued) return unauthorized;
    }
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("state")) return {422, R"({"message":"Validation Failed"})", "application/json"};
    PostedStatus s{parts[2], parts[3], parts[5], j.value("state", ""), j.value("context", "default"),
                   j.value("description", ""), j.value("target_url", "")};
    statuses_.push_back(s);
    return {201, j.dump(), "application/json"};
  }
  return {404, R"({"message":"Not Found"})", "application/json"};
}

bool FakeGitHub::jwt_ok(const http::Request& req) const {
  auto auth = req.header("authorization");
  if (auth.rfind("Bearer ", 0) != 0) return false;
  auto claims = test::verified_jwt_claims(auth.substr(7), app_public_pem_);
  if (!claims) return false;
  auto j = nlohmann::json::parse(*claims, nullptr, false);
  return j.is_object() && j.value("iss", "") == app_id_ && j.value("exp", std::int64_t{0}) > std::time(nullptr);
}

void FakeGitHub::act_as_app(std::string app_id, std::string public_pem, int installation) {
  std::lock_guard lock(mu_);
  app_id_ = std::move(app_id);
  app_public_pem_ = std::move(public_pem);
  installation_ = installation;
}

std::vector<std::string> FakeGitHub::issued_tokens() const {
  std::lock_guard lock(mu_);
  return issued_;
}

std::vector<RecordedCall> FakeGitHub::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

std::vector<PostedStatus> FakeGitHub::statuses() const {
  std::lock_guard lock(mu_);
  return statuses_;
}

std::map<std::string, PostedStatus> FakeGitHub::final_statuses(const std::string& sha) const {
  std::lock_guard lock(mu_);
  std::map<std::string, PostedStatus> out;
  for (const auto& s : statuses_) {
    if (s.sha == sha) out[s.context] = s;
  }
  return out;
}

}  // namespace flurry::fakes
