#pragma once
// The web UI's server side: the routes people open (and that commit
// statuses link to) answer one HTML shell, and /assets/<file> serves the
// plain JS and CSS that render each page from the JSON API in the browser.
#include <map>
#include <optional>
#include <string>

#include "flurry/core/error.hpp"
#include "flurry/http/http.hpp"

namespace flurry::web {

// Where the build found the assets (the source tree's services/web/assets);
// an install copies them to share/flurry/web, and web.assets_dir says so.
std::string default_assets_dir();

// The UI's static files, read once at start: a later change on disk is
// seen after a restart. Only regular files with a known type are held
// (.js .css .svg .png .ico .woff2 .json .txt); hidden names are skipped, and
// so is everything whose real path (symlinks resolved) lies outside the
// directory. Names are paths relative to it ("app.js", "js/dom.js").
class Assets {
 public:
  struct File {
    std::string body;
    std::string content_type;
    std::string etag;  // quoted strong validator from the contents
  };
  // Every such file under `dir`; an error if `dir` is no readable
  // directory or holds more than the limits (4 MiB a file, 64 MiB in all).
  static Result<Assets> load(const std::string& dir);
  const File* find(const std::string& name) const;
  bool has(const std::string& name) const { return find(name) != nullptr; }
  std::size_t size() const { return files_.size(); }

 private:
  std::map<std::string, File> files_;
};

// The answer to a GET of `req.path` when it is the UI's, nullopt when not
// (those paths belong to others: /api/, /badge/, /auth/, ...):
//   /, /projects/<forge>/<owner...>/<repo>, /evals/<eval>,
//   /evals/<eval>/jobs/<job>   the shell (200, text/html, CSP and friends)
//   other paths under /projects/ and /evals/   the shell with 404: the page
//                              says "not found" in the browser
//   /assets/<name>             the file (ETag; If-None-Match answers 304),
//                              404 for anything not loaded (traversal too)
// Without app.js loaded the shell says that the assets are missing.
std::optional<http::Response> handle_page(const http::Request& req, const Assets& assets);

// Loads the assets from `assets_dir` (logging, not failing, when it cannot:
// the API stays up and the shell says what is missing) and routes GET /,
// /projects/*, /evals/* and /assets/* to handle_page.
void register_pages(http::Server& server, const std::string& assets_dir);

}  // namespace flurry::web
