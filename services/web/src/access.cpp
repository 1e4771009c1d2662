#include "access.hpp"

#include <memory>

namespace flurry::web {

Access access_of(Auth& auth, const http::Request& req) {
  auto viewer = std::make_shared<std::optional<Viewer>>(auth.viewer_of(req));
  Access a;
  if (viewer->has_value() && !(*viewer)->api_token) a.actor = (*viewer)->login;
  a.may_read = [&auth, viewer](const http::Request&, const msg::Repo& repo) { return auth.may_read(*viewer, repo); };
  a.is_public = [&auth](const msg::Repo& repo) { return auth.is_public(repo); };
  a.may_act = [&auth, viewer](const http::Request& r, const msg::Repo& repo) -> Result<bool> {
    if (!viewer->has_value()) return false;
    if (!(*viewer)->api_token && !auth.csrf_ok(r, **viewer)) {
      return fail(Error::rejected("this request lacks the session's CSRF token (header X-Flurry-CSRF)"));
    }
    auto ok = auth.may_act(*viewer, repo);
    // A signed-in user who may not: say who, and what is missing.
    if (ok && !*ok) {
      const auto& v = **viewer;
      return fail(Error::rejected(v.forge != repo.forge
                                      ? "you signed in with " + v.forge + "; " + repo.full_name() + " is on " + repo.forge
                                      : v.login + " may not write to " + repo.full_name() + " on " + repo.forge +
                                            " (reading is not enough to act)"));
    }
    return ok;
  };
  return a;
}

}  // namespace flurry::web
