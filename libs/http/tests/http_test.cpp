#include "flurry/http/http.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "flurry/core/child.hpp"
#include "test_socket.hpp"

using namespace flurry;
using namespace flurry::http;

class Http : public ::testing::Test {
 protected:
  void SetUp() override {
    init_threads(2);
    ServerOptions o;
    o.port = free_tcp_port();
    o.max_body = 1000;
    o.timeout = std::chrono::milliseconds(800);
    o.max_connections = 40;
    o.max_buffered = 3500;
    server = make_server(o);
    server->route("POST", "/echo", [](const Request& r) {
      Response out{200, r.body, "application/octet-stream"};
      out.headers["X-Seen-Header"] = r.header("x-custom");
      return out;
    });
    server->route("GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("bug"); });
    server->route("GET", "/files/*", [](const Request& r) { return Response{200, r.path}; });
    server->route("GET", "/slow", [this](const Request&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ++slow_done;
      return Response{200, "slow"};
    });
    server->route("GET", "/block", [this](const Request&) {
      std::unique_lock lock(block_mu);
      block_cv.wait(lock, [this] { return released; });
      return Response{200, "released"};
    });
    server->route_health("GET", "/health", [](const Request&) { return Response{200, "ok"}; });
    server->start();
  }
  void TearDown() override {
    release();
    server->stop();
  }
  void release() {
    {
      std::lock_guard lock(block_mu);
      released = true;
    }
    block_cv.notify_all();
  }
  Result<Response> send(ClientRequest r) {
    r.url = server->url() + r.url;
    return client->send(r);
  }
  int port() const { return std::stoi(server->url().substr(server->url().rfind(':') + 1)); }
  std::unique_ptr<Server> server;
  std::unique_ptr<Client> client = make_client();
  std::atomic<int> slow_done{0};
  std::mutex block_mu;
  std::condition_variable block_cv;
  bool released = false;
};

namespace {

using Clock = std::chrono::steady_clock;

using flurry::http::testing::Socket;

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

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

TEST_F(Http, AHalfSentRequestIsAnswered408AndClosedWithinTheTimeout) {
  Socket s(port());
  ASSERT_GE(s.fd, 0);
  auto start = Clock::now();
  s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"zen\":");
  bool closed = false;
  auto got = s.read(std::chrono::seconds(10), "", &closed);
  auto waited = Clock::now() - start;
  EXPECT_EQ(got.rfind("HTTP/1.1 408 ", 0), 0u) << got;
  EXPECT_TRUE(closed);
  EXPECT_GE(waited, std::chrono::milliseconds(700));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_F(Http, TricklingBytesDoesNotExtendTheRequestDeadline) {
  Socket s(port());
  auto start = Clock::now();
  const std::string req = "GET /files/abcdefghijklmnopqrstuvwxyz HTTP/1.1\r\nHost: x\r\n\r\n";
  bool closed = false;
  std::string got;
  for (char c : req) {
    s.send(std::string(1, c));
    got += s.read(std::chrono::milliseconds(100), "", &closed);
    if (closed || !got.empty()) break;
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 408 ", 0), 0u) << got;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST_F(Http, AnIdleConnectionIsClosedWithoutAnAnswer) {
  Socket s(port());
  bool closed = false;
  auto got = s.read(std::chrono::seconds(5), "", &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(got, "");
}

TEST_F(Http, KeepAliveAndPipelinedRequestsAreAnsweredInOrder) {
  Socket s(port());
  s.send("GET /files/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /files/2 HTTP/1.1\r\nHost: x\r\n\r\n");
  auto got = s.read(std::chrono::seconds(5), "/files/2");
  auto first = got.find("/files/1");
  ASSERT_NE(first, std::string::npos) << got;
  EXPECT_GT(got.find("/files/2"), first);
  EXPECT_EQ(count(got, "HTTP/1.1 200 OK"), 2);
  s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
  bool closed = false;
  got = s.read(std::chrono::seconds(5), "", &closed);
  EXPECT_NE(got.find("Connection: close\r\n\r\nabc"), std::string::npos) << got;
  EXPECT_TRUE(closed);
}

TEST_F(Http, ChunkedBodiesAndExpectContinueReachTheHandler) {
  Socket s(port());
  s.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
  auto got = s.read(std::chrono::seconds(5), "\r\n\r\n");
  EXPECT_EQ(got, "HTTP/1.1 100 Continue\r\n\r\n");
  s.send("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  got = s.read(std::chrono::seconds(5), "abcde");
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK", 0), 0u) << got;
  EXPECT_NE(got.find("\r\n\r\nabcde"), std::string::npos) << got;
}

TEST_F(Http, MalformedRequestsGetTheirStatusAndTheConnectionCloses) {
  for (auto [bytes, status] : std::vector<std::pair<std::string, std::string>>{
           {"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "400"},
           {"NOT HTTP AT ALL\r\n\r\n", "400"},
           {"GET /%zz HTTP/1.1\r\n\r\n", "400"},
           {"GET / HTTP/3.0\r\n\r\n", "505"},
           {"POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x'), "413"}}) {
    Socket s(port());
    s.send(bytes);
    bool closed = false;
    auto got = s.read(std::chrono::seconds(5), "", &closed);
    EXPECT_EQ(got.rfind("HTTP/1.1 " + status + " ", 0), 0u) << bytes.substr(0, 60) << " -> " << got;
    EXPECT_TRUE(closed) << bytes.substr(0, 60);
  }
}

TEST_F(Http, ARequestSentBeforeTheClientShutsItsSideIsStillAnswered) {
  Socket s(port());
  s.send("GET /files/x HTTP/1.1\r\nHost: x\r\n\r\n");
  ::shutdown(s.fd, SHUT_WR);
  bool closed = false;
  auto got = s.read(std::chrono::seconds(5), "", &closed);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK", 0), 0u) << got;
  EXPECT_NE(got.find("\r\n\r\n/files/x"), std::string::npos) << got;
  EXPECT_TRUE(closed);
}

TEST_F(Http, AClientLeavingMidHandlerDoesNotDisturbTheServer) {
  {
    Socket s(port());
    s.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  auto again = send({.url = "/files/ok"});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->body, "/files/ok");
  for (int i = 0; i < 50 && slow_done == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(slow_done, 1);
}

TEST_F(Http, ConnectionsBeyondTheMaximumAreClosedAndOthersServedOnceTheyGo) {
  std::vector<std::unique_ptr<Socket>> held;
  for (int i = 0; i < 40; ++i) {
    held.push_back(std::make_unique<Socket>(port()));
    held.back()->send("G");  // started, so kept until the request deadline
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Socket extra(port());
  bool closed = false;
  auto got = extra.read(std::chrono::milliseconds(500), "", &closed);
  EXPECT_TRUE(closed) << "the 41st connection was kept: " << got;
  held.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto r = send({.url = "/files/after"});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->body, "/files/after");
}

TEST_F(Http, StopReturnsWhileClientsHoldConnections) {
  Socket a(port());
  a.send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
  Socket b(port());
  auto start = Clock::now();
  server->stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  bool closed = false;
  a.read(std::chrono::seconds(2), "", &closed);
  EXPECT_TRUE(closed);
}

TEST(HttpListen, AnAddressInUseIsAClearError) {
  ServerOptions o;
  o.port = free_tcp_port();
  auto first = make_server(o);
  first->start();
  auto second = make_server(o);
  try {
    second->start();
    FAIL() << "a second server bound the same port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on http://127.0.0.1:" + std::to_string(o.port)), std::string::npos) << e.what();
  }
  first->stop();
}

TEST_F(Http, HealthRoutesAreAnsweredWhileEveryWorkerIsBlocked) {
  std::vector<std::unique_ptr<Socket>> blocked;
  for (int i = 0; i < 8; ++i) {  // twice the workers
    blocked.push_back(std::make_unique<Socket>(port()));
    blocked.back()->send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Socket probe(port());
  probe.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  auto got = probe.read(std::chrono::seconds(3), "\r\n\r\nok");
  EXPECT_NE(got.find("\r\n\r\nok"), std::string::npos) << "health was not answered while workers were blocked: " << got;
  Socket shared(port());
  shared.send("GET /files/x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(shared.read(std::chrono::milliseconds(300), "/files/x"), "") << "a shared worker was free after all";
  release();
  EXPECT_NE(shared.read(std::chrono::seconds(5), "/files/x").find("/files/x"), std::string::npos);
  for (auto& b : blocked) EXPECT_NE(b->read(std::chrono::seconds(5), "released").find("released"), std::string::npos);
}

TEST_F(Http, RequestBytesBeyondTheBufferBudgetGet503AndOthersAreServed) {
  std::vector<std::unique_ptr<Socket>> big;
  std::string answers;
  for (int i = 0; i < 4; ++i) {  // 4 x 900 bytes held > 3500
    big.push_back(std::make_unique<Socket>(port()));
    big.back()->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + std::string(900, 'x'));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  bool closed = false;
  auto refused = big.back()->read(std::chrono::seconds(2), "", &closed);
  EXPECT_EQ(refused.rfind("HTTP/1.1 503 ", 0), 0u) << refused;
  EXPECT_TRUE(closed);
  // The others still complete.
  big[0]->send(std::string(100, 'y'));
  auto done = big[0]->read(std::chrono::seconds(2), "yyyy");
  EXPECT_EQ(done.rfind("HTTP/1.1 200 OK", 0), 0u) << done.substr(0, 80);
  auto r = send({.url = "/files/after"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}
