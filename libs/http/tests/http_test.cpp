#include "flurry/http/http.hpp"

#include <gtest/gtest.h>

#include "flurry/core/child.hpp"

using namespace flurry;
using namespace flurry::http;

class Http : public ::testing::Test {
 protected:
  void SetUp() override {
    init_threads(2);
    ServerOptions o;
    o.port = free_tcp_port();
    o.max_body = 1000;
    server = make_server(o);
    server->route("POST", "/echo", [](const Request& r) {
      Response out{200, r.body, "application/octet-stream"};
      out.headers["X-Seen-Header"] = r.header("x-custom");
      return out;
    });
    server->route("GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("bug"); });
    server->route("GET", "/files/*", [](const Request& r) { return Response{200, r.path}; });
    server->start();
  }
  void TearDown() override { server->stop(); }
  Result<Response> send(ClientRequest r) {
    r.url = server->url() + r.url;
    return client->send(r);
  }
  std::unique_ptr<Server> server;
  std::unique_ptr<Client> client = make_client();
};

TEST_F(Http, RawBodyAndHeadersReachTheHandlerByteExactly) {
  std::string body = std::string("{\"a\": 1}\r\n\x01\xff", 12);
  auto r = send({.method = "POST", .url = "/echo", .headers = {{"X-Custom", "v"}}, .body = body});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->header("x-seen-header"), "v");
}

TEST_F(Http, OversizedBodyIs413) {
  auto r = send({.method = "POST", .url = "/echo", .body = std::string(5000, 'x')});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
}

TEST_F(Http, HandlerExceptionIs500AndTheServerKeepsServing) {
  auto r = send({.url = "/boom"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 500);
  auto again = send({.method = "POST", .url = "/echo", .body = "ok"});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->body, "ok");
}

TEST_F(Http, UnknownPathIs404AndWrongMethodIs405AndPrefixRoutesMatch) {
  EXPECT_EQ(send({.url = "/nope"})->status, 404);
  EXPECT_EQ(send({.url = "/echo"})->status, 405);
  auto r = send({.url = "/files/a%20b"});
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "/files/a b");
}

TEST_F(Http, ClientToAClosedPortIsATransientError) {
  auto r = client->send({.url = "http://127.0.0.1:" + std::to_string(free_tcp_port()) + "/", .timeout = std::chrono::seconds(2)});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
}
