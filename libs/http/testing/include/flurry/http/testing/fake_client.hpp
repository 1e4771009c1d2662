#pragma once
// A scripted http::Client for unit tests.
#include <deque>

#include "flurry/http/http.hpp"

namespace flurry::http::testing {

class FakeHttpClient final : public http::Client {
 public:
  Result<http::Response> send(const http::ClientRequest& req) override {
    requests.push_back(req);
    if (answers.empty()) return http::Response{201, "{}"};
    auto a = answers.front();
    answers.pop_front();
    return a;
  }
  std::vector<http::ClientRequest> requests;
  std::deque<Result<http::Response>> answers;
};

}  // namespace flurry::http::testing
