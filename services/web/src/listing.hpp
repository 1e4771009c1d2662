#pragma once
// What the web UI's pages list, read from the catalog's indexes and the
// state store (never a scan): projects, a project's refs with their latest
// evals, a ref's evals newest first (cursor-paged), an eval's comparison
// with its base, and its effects.
#include <functional>
#include <optional>
#include <string>

#include "flurry/core/error.hpp"
#include "flurry/http/http.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/store.hpp"

namespace flurry::web {

struct ListingPorts {
  state::StateStore& state;
  state::Catalog& catalog;
};

// Whether the asker may read a repository's evals (web::Access); and
// whether everyone may (none: every project is public).
using ReadCheck = std::function<Result<bool>(const msg::Repo& repo)>;
using PublicCheck = std::function<Result<bool>(const msg::Repo& repo)>;

// Most items one answer holds.
inline constexpr std::size_t kMaxProjects = 500;
inline constexpr std::size_t kMaxRefs = 200;
inline constexpr std::size_t kMaxEvalsPerPage = 100;

// Answers a listing request (routes in api.hpp); nullopt when `req` is
// none of them. Projects the asker may not read are left out of lists and
// answered 404 alone, as if they did not exist.
std::optional<http::Response> handle_listing(const http::Request& req, ListingPorts ports, const ReadCheck& may_read,
                                             const PublicCheck& is_public = {});

}  // namespace flurry::web
