#include "pages.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

using namespace flurry;
namespace fs = std::filesystem;

namespace {

// A throwaway assets directory, with a secret beside it that traversal
// attempts aim for.
class Pages : public ::testing::Test {
 protected:
  void SetUp() override {
    base = fs::temp_directory_path() / ("flurry-pages-" + std::to_string(std::random_device{}()));
    dir = base / "assets";
    fs::create_directories(dir / "js");
    write(dir / "app.js", "import './js/dom.js';\n");
    write(dir / "js" / "dom.js", "export const x = 1;\n");
    write(dir / "app.css", "body { color: black }\n");
    write(dir / "favicon.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    write(dir / "logo.png", std::string("\x89PNG\r\n\x1a\n", 8));
    write(dir / "font.woff2", "wOF2");
    write(dir / "notes.md", "not an asset type");
    write(dir / ".hidden.js", "secret");
    write(base / "secret.js", "the secret");
    fs::create_symlink(base / "secret.js", dir / "outside.js");
    fs::create_symlink(dir / "app.js", dir / "alias.js");
    auto loaded = web::Assets::load(dir.string());
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    assets = std::move(*loaded);
  }
  void TearDown() override { fs::remove_all(base); }
  static void write(const fs::path& p, const std::string& body) { std::ofstream(p, std::ios::binary) << body; }

  std::optional<http::Response> get(const std::string& path, const std::string& if_none_match = "") {
    http::Request r;
    r.method = "GET";
    r.path = path;
    if (!if_none_match.empty()) r.headers["if-none-match"] = if_none_match;
    return web::handle_page(r, assets);
  }

  fs::path base, dir;
  web::Assets assets;
};

void expect_shell(const std::optional<http::Response>& r, int status) {
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, status);
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r->header("content-security-policy"),
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
  EXPECT_EQ(r->header("x-content-type-options"), "nosniff");
  EXPECT_EQ(r->header("referrer-policy"), "same-origin");
  EXPECT_EQ(r->header("cache-control"), "no-cache");
  EXPECT_NE(r->body.find("<script type=\"module\" src=\"/assets/app.js\"></script>"), std::string::npos);
  EXPECT_NE(r->body.find("/assets/app.css"), std::string::npos);
}

// Records routes and dispatches like the real server: first match, a
// trailing '*' matching by prefix.
class RecordingServer final : public http::Server {
 public:
  void route(const std::string& method, const std::string& path, http::Handler h) override { routes.push_back({method, path, h}); }
  void route_health(const std::string& method, const std::string& path, http::Handler h) override { route(method, path, h); }
  void start() override {}
  void stop() override {}
  std::string url() const override { return "http://127.0.0.1:1"; }
  std::size_t streams() const override { return 0; }
  std::optional<http::Response> dispatch(const std::string& method, const std::string& path) const {
    for (const auto& r : routes) {
      const bool prefix = r.path.back() == '*';
      const bool ok = prefix ? path.rfind(r.path.substr(0, r.path.size() - 1), 0) == 0 : path == r.path;
      if (ok && r.method == method) {
        http::Request req;
        req.method = method;
        req.path = path;
        return r.handler(req);
      }
    }
    return std::nullopt;
  }
  struct Route {
    std::string method, path;
    http::Handler handler;
  };
  std::vector<Route> routes;
};

}  // namespace

TEST_F(Pages, UiRoutesAnswerTheShellWithItsSecurityHeaders) {
  for (const char* path : {"/", "/projects/github/octo/hello", "/projects/gitlab/group/sub/team/repo", "/evals/e1",
                           "/evals/e1/jobs/j-a", "/evals/e1/effects"}) {
    SCOPED_TRACE(path);
    expect_shell(get(path), 200);
  }
}

TEST_F(Pages, MalformedUiPathsAnswerTheShellWith404SoThePageCanSaySo) {
  for (const char* path : {"/projects/github", "/projects/github/octo", "/projects/github//hello", "/projects/github/octo/hello/",
                           "/evals/", "/evals/e1/", "/evals/e1/jobs", "/evals/e1/jobs/", "/evals/e1/other/j", "/evals/e1/jobs/j/x"}) {
    SCOPED_TRACE(path);
    expect_shell(get(path), 404);
  }
  expect_shell(get("/evals/" + std::string(201, 'a')), 404);
}

TEST_F(Pages, TheShellCarriesNothingFromTheRequest) {
  auto plain = get("/evals/e1");
  auto hostile = get("/evals/<script>alert(1)</script>");
  ASSERT_TRUE(hostile.has_value());
  EXPECT_EQ(hostile->body, plain->body);
}

TEST_F(Pages, OtherPathsAreNotClaimed) {
  for (const char* path : {"/api/evals/e1", "/badge/github/o/r.svg", "/auth/github/login", "/metrics", "/healthz", "/evalsx",
                           "/project/x", "/favicon.ico", "/index.html"}) {
    SCOPED_TRACE(path);
    EXPECT_FALSE(get(path).has_value());
  }
  http::Request post;
  post.method = "POST";
  post.path = "/evals/e1";
  EXPECT_FALSE(web::handle_page(post, assets).has_value());
}

TEST_F(Pages, RegistersOnlyItsOwnRoutes) {
  RecordingServer server;
  web::register_pages(server, dir.string());
  std::vector<std::string> got;
  for (const auto& r : server.routes) got.push_back(r.method + " " + r.path);
  EXPECT_EQ(got, (std::vector<std::string>{"GET /", "GET /projects/*", "GET /evals/*", "GET /assets/*"}));
  for (const char* path : {"/api/evals/e1", "/auth/logout", "/badge/x.svg", "/other"}) EXPECT_FALSE(server.dispatch("GET", path));
  auto shell = server.dispatch("GET", "/evals/e1/jobs/j1");
  ASSERT_TRUE(shell.has_value());
  EXPECT_EQ(shell->status, 200);
  auto js = server.dispatch("GET", "/assets/js/dom.js");
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(js->body, "export const x = 1;\n");
}

TEST_F(Pages, AssetsHaveTheirContentTypesAndCacheHeaders) {
  const std::pair<const char*, const char*> cases[] = {
      {"/assets/app.js", "text/javascript; charset=utf-8"}, {"/assets/js/dom.js", "text/javascript; charset=utf-8"},
      {"/assets/app.css", "text/css; charset=utf-8"},       {"/assets/favicon.svg", "image/svg+xml"},
      {"/assets/logo.png", "image/png"},                    {"/assets/font.woff2", "font/woff2"},
  };
  for (const auto& [path, type] : cases) {
    SCOPED_TRACE(path);
    auto r = get(path);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->content_type, type);
    EXPECT_EQ(r->header("cache-control"), "public, max-age=300");
    EXPECT_EQ(r->header("x-content-type-options"), "nosniff");
    EXPECT_EQ(r->header("etag").front(), '"');
  }
  EXPECT_EQ(get("/assets/logo.png")->body, std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(Pages, MatchingIfNoneMatchAnswers304WithoutBody) {
  auto first = get("/assets/app.js");
  const std::string etag = first->header("etag");
  for (const std::string& inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    SCOPED_TRACE(inm);
    auto r = get("/assets/app.js", inm);
    EXPECT_EQ(r->status, 304);
    EXPECT_TRUE(r->body.empty());
    EXPECT_EQ(r->header("etag"), etag);
  }
  auto changed = get("/assets/app.js", "\"other\"");
  EXPECT_EQ(changed->status, 200);
  EXPECT_EQ(changed->body, "import './js/dom.js';\n");
  EXPECT_NE(get("/assets/app.css")->header("etag"), etag);
}

TEST_F(Pages, TraversalAndUnservedFilesAre404) {
  // Paths arrive percent-decoded: "%2e%2e%2f" is "../" by now.
  for (const char* path : {"/assets/../secret.js", "/assets/js/../../secret.js", "/assets//etc/passwd", "/assets/%2e%2e/secret.js",
                           "/assets/..%2fsecret.js", "/assets/outside.js", "/assets/.hidden.js", "/assets/notes.md", "/assets/",
                           "/assets/js", "/assets/missing.js", "/assets/./app.js", "/assets/js\\dom.js"}) {
    SCOPED_TRACE(path);
    auto r = get(path);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(r->body.find("secret"), std::string::npos);
  }
  // A symlink that stays inside the directory is served.
  EXPECT_EQ(get("/assets/alias.js")->status, 200);
}

TEST_F(Pages, WithoutAssetsTheShellSaysWhatIsMissing) {
  EXPECT_FALSE(web::Assets::load((base / "nowhere").string()).has_value());
  web::Assets none;
  http::Request r;
  r.method = "GET";
  r.path = "/evals/e1";
  auto shell = web::handle_page(r, none);
  ASSERT_TRUE(shell.has_value());
  EXPECT_EQ(shell->status, 200);
  EXPECT_NE(shell->body.find("web.assets_dir"), std::string::npos);
}

TEST(PagesDefault, TheSourceTreeAssetsLoadAndHoldTheEntryPoints) {
  auto loaded = web::Assets::load(web::default_assets_dir());
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  for (const char* name : {"app.js", "app.css", "favicon.svg"}) EXPECT_TRUE(loaded->has(name)) << name;
}
