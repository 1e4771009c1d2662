#pragma once
// The API's access rules (api.hpp's Access) from the sign-in module: who
// asks is looked up once per request; a POST from a signed-in browser must
// carry its session's CSRF token.
#include "api.hpp"
#include "auth.hpp"

namespace flurry::web {

Access access_of(Auth& auth, const http::Request& req);

}  // namespace flurry::web
