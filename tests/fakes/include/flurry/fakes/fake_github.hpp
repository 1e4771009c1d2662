#pragma once
// A fake GitHub REST API on loopback for end-to-end tests: records every
// call Flurry makes and answers like GitHub (201 for a commit status).
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flurry/http/http.hpp"

namespace flurry::fakes {

struct RecordedCall {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct PostedStatus {
  std::string owner, repo, sha;
  std::string state, context, description, target_url;
};

class FakeGitHub {
 public:
  FakeGitHub();  // listens on a free loopback port at once
  ~FakeGitHub();
  std::string url() const;

  std::vector<RecordedCall> calls() const;
  // Every commit status posted, in arrival order.
  std::vector<PostedStatus> statuses() const;
  // The last status per context for one sha.
  std::map<std::string, PostedStatus> final_statuses(const std::string& sha) const;

  // From now on acts as GitHub does for the GitHub App `app_id` installed
  // as `installation` on every repository: the installation lookup and
  // access-token endpoints take only a JWT that `public_pem` verifies, with
  // that issuer and not expired (401 otherwise), and commit statuses only
  // an installation token it issued.
  void act_as_app(std::string app_id, std::string public_pem, int installation);
  std::vector<std::string> issued_tokens() const;

 private:
  http::Response handle(const http::Request& req);
  std::unique_ptr<http::Server> server_;
  mutable std::mutex mu_;
  bool jwt_ok(const http::Request& req) const;
  std::vector<RecordedCall> calls_;
  std::vector<PostedStatus> statuses_;
  std::string app_id_, app_public_pem_;
  int installation_ = 0;
  std::vector<std::string> issued_;
};

}  // namespace flurry::fakes
