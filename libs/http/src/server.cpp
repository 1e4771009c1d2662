// The HTTP server wrapper over cpprest's http_listener. cpprest stays in
// this file and client.cpp.
#include <cpprest/http_listener.h>
#include <pplx/threadpool.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "flurry/core/log.hpp"
#include "flurry/http/http.hpp"

namespace flurry::http {
namespace {

using web::http::experimental::listener::http_listener;
using web::http::experimental::listener::http_listener_config;
namespace wh = web::http;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

struct Route {
  std::string method;
  std::string path;
  bool prefix;
  Handler handler;
};

class CppRestServer final : public Server {
 public:
  explicit CppRestServer(ServerOptions o) : options_(std::move(o)) {}
  ~CppRestServer() override { stop(); }

  void route(const std::string& method, const std::string& path, Handler handler) override {
    bool prefix = !path.empty() && path.back() == '*';
    routes_.push_back({method, prefix ? path.substr(0, path.size() - 1) : path, prefix, std::move(handler)});
  }

  void start() override {
    http_listener_config cfg;
    cfg.set_timeout(options_.timeout);
    listener_ = std::make_unique<http_listener>(web::uri(utility::conversions::to_string_t(url())), cfg);
    listener_->support([this](wh::http_request req) { serve(std::move(req)); });
    try {
      listener_->open().wait();
    } catch (const std::exception& e) {
      listener_.reset();
      throw std::runtime_error("cannot listen on " + url() + ": " + e.what());
    }
  }

  void stop() override {
    if (!listener_) return;
    try {
      listener_->close().wait();
    } catch (...) {
    }
    listener_.reset();
  }

  std::string url() const override { return "http://" + options_.address + ":" + std::to_string(options_.port); }

 private:
  void reply(wh::http_request& req, const Response& r) {
    wh::http_response resp(static_cast<wh::status_code>(r.status));
    for (const auto& [k, v] : r.headers) resp.headers().add(k, v);
    resp.set_body(r.body, r.content_type);
    req.reply(resp).then([](pplx::task<void> t) {
      try {
        t.get();
      } catch (...) {
        // The client went away; nothing to do.
      }
    });
  }

  void serve(wh::http_request req) {
    Request r;
    r.method = req.method();
    r.path = web::uri::decode(req.relative_uri().path());
    r.query = req.relative_uri().query();
    for (const auto& [k, v] : req.headers()) r.headers[lower(k)] = v;

    const Route* match = nullptr;
    bool path_known = false;
    for (const auto& rt : routes_) {
      bool path_ok = rt.prefix ? r.path.rfind(rt.path, 0) == 0 : r.path == rt.path;
      if (!path_ok) continue;
      path_known = true;
      if (rt.method == r.method) {
        match = &rt;
        break;
      }
    }
    if (!match) {
      reply(req, path_known ? Response{405, "method not allowed\n"} : Response{404, "not found\n"});
      return;
    }
    auto declared = req.headers().content_length();
    if (declared > options_.max_body) {
      reply(req, {413, "request body too large\n"});
      return;
    }
    // Raw bytes, exactly as sent: signatures are computed over them.
    req.extract_vector().then([this, req, r = std::move(r), match](pplx::task<std::vector<unsigned char>> body) mutable {
      Response out;
      try {
        auto bytes = body.get();
        if (bytes.size() > options_.max_body) {
          reply(req, {413, "request body too large\n"});
          return;
        }
        r.body.assign(bytes.begin(), bytes.end());
        out = match->handler(r);
      } catch (const std::exception& e) {
        log::error("http.handler_failed", "request failed", {{"path", r.path}, {"error", e.what()}});
        out = {500, "internal error\n"};
      } catch (...) {
        out = {500, "internal error\n"};
      }
      reply(req, out);
    });
  }

  ServerOptions options_;
  std::vector<Route> routes_;
  std::unique_ptr<http_listener> listener_;
};

}  // namespace

std::string Response::header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers) {
    if (lower(k) == lower_name) return v;
  }
  return {};
}

std::unique_ptr<Server> make_server(const ServerOptions& options) { return std::make_unique<CppRestServer>(options); }

void init_threads(int n) {
  static bool done = false;
  if (done) return;
  done = true;
  crossplat::threadpool::initialize_with_threads(static_cast<std::size_t>(std::max(1, n)));
}

}  // namespace flurry::http
