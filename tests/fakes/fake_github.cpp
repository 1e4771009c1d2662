#include "flurry/fakes/fake_github.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/child.hpp"
#include "flurry/core/text.hpp"

namespace flurry::fakes {

FakeGitHub::FakeGitHub() {
  http::ServerOptions o;
  o.port = free_tcp_port();
  server_ = http::make_server(o);
  server_->route("POST", "/repos/*", [this](const http::Request& r) { return handle(r); });
  server_->route("GET", "/*", [this](const http::Request& r) { return handle(r); });
  server_->start();
}

FakeGitHub::~FakeGitHub() { server_->stop(); }

std::string FakeGitHub::url() const { return server_->url(); }

http::Response FakeGitHub::handle(const http::Request& req) {
  std::lock_guard lock(mu_);
  calls_.push_back({req.method, req.path, req.headers, req.body});
  // POST /repos/{owner}/{repo}/statuses/{sha}
  auto parts = text::split(req.path, '/');
  if (req.method == "POST" && parts.size() == 6 && parts[1] == "repos" && parts[4] == "statuses") {
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("state")) return {422, R"({"message":"Validation Failed"})", "application/json"};
    PostedStatus s{parts[2], parts[3], parts[5], j.value("state", ""), j.value("context", "default"),
                   j.value("description", ""), j.value("target_url", "")};
    statuses_.push_back(s);
    return {201, j.dump(), "application/json"};
  }
  return {404, R"({"message":"Not Found"})", "application/json"};
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
