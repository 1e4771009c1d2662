#include "pages.hpp"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>

#include "flurry/core/crypto.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"

#ifndef FLURRY_WEB_ASSETS_DIR
#define FLURRY_WEB_ASSETS_DIR "share/flurry/web"
#endif

namespace flurry::web {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxFile = 4 * 1024 * 1024;
constexpr std::size_t kMaxTotal = 64 * 1024 * 1024;
constexpr std::size_t kMaxId = 200;  // as the API: longer is no id

// The shell's policy: nothing inline, nothing from elsewhere, no framing.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

std::optional<std::string> content_type_of(const std::string& name) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
  };
  for (const auto& [ext, type] : kTypes) {
    if (text::ends_with(name, ext) && name.size() > std::string_view(ext).size()) return std::string(type);
  }
  return std::nullopt;
}

bool hidden(const fs::path& relative) {
  for (const auto& part : relative) {
    if (!part.empty() && part.native().front() == '.') return true;
  }
  return false;
}

// The same document for every UI route: the page is chosen and drawn by
// app.js from location.pathname. Holds no request data, so it cannot carry
// anything a request smuggles in.
std::string shell(bool have_assets) {
  std::string main = have_assets
                         ? "<p class=\"loading\">Loading…</p>"
                         : "<p>Flurry's web assets were not found on this server (config <code>web.assets_dir</code>), so "
                           "this page cannot be shown. The JSON API under <a href=\"/api/\">/api/</a> works without them.</p>";
  return "<!doctype html>\n"
         "<html lang=\"en\">\n"
         "<head>\n"
         "<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<meta name=\"color-scheme\" content=\"light dark\">\n"
         "<title>Flurry</title>\n"
         "<link rel=\"icon\" href=\"/assets/favicon.svg\" type=\"image/svg+xml\">\n"
         "<link rel=\"stylesheet\" href=\"/assets/app.css\">\n"
         "<script type=\"module\" src=\"/assets/app.js\"></script>\n"
         "</head>\n"
         "<body>\n"
         "<a class=\"skip-link\" href=\"#main\">Skip to content</a>\n"
         "<header id=\"site-header\" class=\"site-header\"><a class=\"brand\" href=\"/\">Flurry</a></header>\n"
         "<main id=\"main\" tabindex=\"-1\" aria-busy=\"true\">" +
         main +
         "</main>\n"
         "<noscript><p class=\"noscript\">Flurry's pages are drawn by JavaScript; without it, the JSON API under "
         "/api/ has the same data.</p></noscript>\n"
         "</body>\n"
         "</html>\n";
}

http::Response shell_response(int status, const Assets& assets) {
  http::Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = shell(assets.has("app.js"));
  r.headers["Content-Security-Policy"] = kContentSecurityPolicy;
  r.headers["X-Content-Type-Options"] = "nosniff";
  r.headers["Referrer-Policy"] = "same-origin";
  r.headers["Cache-Control"] = "no-cache";
  return r;
}

http::Response not_found() {
  http::Response r;
  r.status = 404;
  r.body = "not found\n";
  r.headers["X-Content-Type-Options"] = "nosniff";
  return r;
}

bool is_id(std::string_view s) { return !s.empty() && s.size() <= kMaxId; }

// /projects/<forge>/<owner...>/<repo>: at least three non-empty segments
// (GitLab owners are groups with slashes).
bool is_project_path(const std::string& rest) {
  auto parts = text::split(rest, '/');
  if (parts.size() < 3) return false;
  for (const auto& p : parts) {
    if (p.empty()) return false;
  }
  return true;
}

// <eval> or <eval>/jobs/<job>.
bool is_eval_path(const std::string& rest) {
  auto parts = text::split(rest, '/');
  if (parts.size() == 1) return is_id(parts[0]);
  if (parts.size() == 2) return is_id(parts[0]) && parts[1] == "effects";  // the flurry/effects status's link
  return parts.size() == 3 && is_id(parts[0]) && parts[1] == "jobs" && is_id(parts[2]);
}

// True if the If-None-Match header names `etag` (or is "*"); weak
// validators compare by their opaque part, as RFC 9110 says for GET.
bool none_match(const std::string& header, const std::string& etag) {
  for (auto tag : text::split(header, ',')) {
    tag = text::trim(tag);
    if (tag == "*") return true;
    if (text::starts_with(tag, "W/")) tag = tag.substr(2);
    if (tag == etag) return true;
  }
  return false;
}

http::Response asset(const std::string& name, const http::Request& req, const Assets& assets) {
  const Assets::File* f = assets.find(name);
  if (!f) return not_found();
  http::Response r;
  r.headers["ETag"] = f->etag;
  r.headers["Cache-Control"] = "public, max-age=300";
  r.headers["X-Content-Type-Options"] = "nosniff";
  if (auto inm = req.header("if-none-match"); !inm.empty() && none_match(inm, f->etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.content_type = f->content_type;
  r.body = f->body;
  return r;
}

}  // namespace

std::string default_assets_dir() { return FLURRY_WEB_ASSETS_DIR; }

Result<Assets> Assets::load(const std::string& dir) {
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root, ec)) return fail(Error::not_found("no assets directory " + dir));
  Assets out;
  std::size_t total = 0;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) return fail(Error::not_found("cannot read " + dir + ": " + ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) return fail(Error::not_found("cannot read " + dir + ": " + ec.message()));
    const fs::path relative = it->path().lexically_relative(root);
    if (hidden(relative)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    auto type = content_type_of(relative.filename().string());
    if (!type) continue;
    // A symlink may point anywhere: only what really lies inside is served.
    const fs::path real = fs::canonical(it->path(), ec);
    if (ec) continue;
    const auto real_rel = real.lexically_relative(root);
    if (real_rel.empty() || *real_rel.begin() == ".." || !fs::is_regular_file(real, ec)) continue;
    const auto size = fs::file_size(real, ec);
    if (ec) continue;
    if (size > kMaxFile) return fail(Error::rejected(relative.string() + " is larger than 4 MiB"));
    if ((total += size) > kMaxTotal) return fail(Error::rejected(dir + " holds more than 64 MiB of assets"));
    std::ifstream in(real, std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in && !in.eof()) continue;
    File f;
    f.body = body.str();
    f.content_type = *type;
    f.etag = "\"" + crypto::sha256_hex(f.body).substr(0, 32) + "\"";
    out.files_[relative.generic_string()] = std::move(f);
  }
  return out;
}

const Assets::File* Assets::find(const std::string& name) const {
  auto it = files_.find(name);
  return it == files_.end() ? nullptr : &it->second;
}

std::optional<http::Response> handle_page(const http::Request& req, const Assets& assets) {
  if (req.method != "GET") return std::nullopt;
  const std::string& p = req.path;
  if (p == "/") return shell_response(200, assets);
  if (text::starts_with(p, "/assets/")) return asset(p.substr(8), req, assets);
  if (text::starts_with(p, "/projects/")) return shell_response(is_project_path(p.substr(10)) ? 200 : 404, assets);
  if (text::starts_with(p, "/evals/")) return shell_response(is_eval_path(p.substr(7)) ? 200 : 404, assets);
  return std::nullopt;
}

void register_pages(http::Server& server, const std::string& assets_dir) {
  auto assets = std::make_shared<Assets>();
  if (auto loaded = Assets::load(assets_dir); !loaded) {
    log::error("web.no_assets", "the web UI's assets cannot be loaded; pages say so (set web.assets_dir)",
               {{"dir", assets_dir}, {"error", loaded.error().message}});
  } else {
    *assets = std::move(*loaded);
    log::info("web.assets", "web UI assets loaded", {{"dir", assets_dir}, {"files", std::to_string(assets->size())}});
  }
  auto handler = [assets](const http::Request& req) { return handle_page(req, *assets).value_or(not_found()); };
  for (const char* path : {"/", "/projects/*", "/evals/*", "/assets/*"}) server.route("GET", path, handler);
}

}  // namespace flurry::web
