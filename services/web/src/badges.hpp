#pragma once
// Status badges (shields-style SVG) for READMEs:
//   GET /badge/<forge>/<owner>/<repo>.svg[?branch=B][&attr=A]
// the state of the newest eval of branch B (default: the project's default
// branch), or of attribute A in it. Owner may contain slashes (GitLab
// groups): the forge is the first segment, the repository the last.
// Private repositories' badges answer 404 to whoever may not read them.
#include <optional>
#include <string>

#include "flurry/http/http.hpp"
#include "listing.hpp"

namespace flurry::web {

// The badge for `req` if it is a badge request; nullopt otherwise.
std::optional<http::Response> handle_badge(const http::Request& req, ListingPorts ports, const ReadCheck& may_read);

// A badge's SVG: `label` on grey, `message` on `colour` (#rrggbb).
std::string badge_svg(const std::string& label, const std::string& message, const std::string& colour);

}  // namespace flurry::web
