#pragma once
// An http::Client for tests that, unlike the production client (cpprest
// follows up to ten redirects by itself), answers a redirect as it came:
// a test walks a sign-in from redirect to redirect as a browser would, and
// sees every Location and Set-Cookie on the way. Plain HTTP/1.1 over one
// connection per request ("Connection: close"); http:// URLs only. Header
// names come back lower-case; a header sent more than once (Set-Cookie)
// reads as its values joined by newlines. Sends no Content-Type unless
// the request's headers have one.
#include "flurry/http/http.hpp"

namespace flurry::fakes {

class RawHttpClient final : public http::Client {
 public:
  // An error for no answer (refused, timed out, unreadable) or an https URL.
  Result<http::Response> send(const http::ClientRequest& req) override;
};

}  // namespace flurry::fakes
