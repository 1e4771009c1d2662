// The HTTP client adapter over cpprest's http_client.
#include <cpprest/http_client.h>
#include <pplx/threadpool.h>

#include <algorithm>

#include "flurry/http/http.hpp"

namespace flurry::http {
namespace {

namespace wh = web::http;

class CppRestClient final : public Client {
 public:
  Result<Response> send(const ClientRequest& req) override {
    try {
      web::uri uri(utility::conversions::to_string_t(req.url));
      wh::client::http_client_config cfg;
      cfg.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(req.timeout));
      // A redirect is answered as it is, never followed: following one would
      // send the request's Authorization header to wherever it points.
      cfg.set_max_redirects(0);
      auto base = web::uri_builder().set_scheme(uri.scheme()).set_host(uri.host()).set_port(uri.port()).to_uri();
      wh::client::http_client client(base, cfg);
      wh::http_request r(req.method);
      r.set_request_uri(web::uri_builder().set_path(uri.path(), false).set_query(uri.query(), false).to_uri());
      std::string content_type = "application/json";
      for (const auto& [k, v] : req.headers) {
        if (k == "Content-Type" || k == "content-type") content_type = v;
        else r.headers().add(k, v);
      }
      if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
        r.set_body(std::vector<unsigned char>(req.body.begin(), req.body.end()));
        r.headers().set_content_type(content_type);
      }
      auto resp = client.request(r).get();
      Response out;
      out.status = resp.status_code();
      for (const auto& [k, v] : resp.headers()) out.headers[k] = v;
      auto bytes = resp.extract_vector().get();
      out.body.assign(bytes.begin(), bytes.end());
      out.content_type = resp.headers().content_type();
      return out;
    } catch (const std::exception& e) {
      return fail(Error::transient("http: " + req.method + " " + req.url + " failed: " + e.what()));
    }
  }
};

}  // namespace

std::unique_ptr<Client> make_client() { return std::make_unique<CppRestClient>(); }

void init_threads(int n) {
  static bool done = false;
  if (done) return;
  done = true;
  crossplat::threadpool::initialize_with_threads(static_cast<std::size_t>(std::max(1, n)));
}

}  // namespace flurry::http
