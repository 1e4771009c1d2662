// Streaming responses over real loopback sockets. No test waits on a
// timing threshold: each step waits for a condition the test controls,
// with a generous limit only as a guard against hanging.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "flurry/core/child.hpp"
#include "flurry/http/http.hpp"
#include "test_socket.hpp"

using namespace flurry;
using namespace flurry::http;
using flurry::http::testing::Socket;

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kGuard{std::chrono::seconds(20)};

// What a test's Stream hands out, and whether the server has let it go.
struct Script {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  bool ended = false;
  bool released = false;

  void push(const std::string& piece) {
    std::lock_guard lock(mu);
    pieces.push_back(piece);
  }
  void end() {
    std::lock_guard lock(mu);
    ended = true;
  }
  bool wait_released() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, kGuard, [&] { return released; });
  }
};

// Returns what the test pushed, one piece a call; ends once the test has
// called end() and every piece is out.
class ScriptedStream final : public Stream {
 public:
  explicit ScriptedStream(std::shared_ptr<Script> s) : s_(std::move(s)) {}
  ~ScriptedStream() override {
    {
      std::lock_guard lock(s_->mu);
      s_->released = true;
    }
    s_->cv.notify_all();
  }
  std::optional<std::string> next() override {
    std::lock_guard lock(s_->mu);
    if (!s_->pieces.empty()) {
      std::string p = s_->pieces.front();
      s_->pieces.pop_front();
      return p;
    }
    if (s_->ended) return std::nullopt;
    return std::string();
  }

 private:
  std::shared_ptr<Script> s_;
};

// Hands out `piece` on every call, forever, counting what it produced.
class EndlessStream final : public Stream {
 public:
  EndlessStream(std::string piece, std::shared_ptr<std::atomic<std::size_t>> produced, std::shared_ptr<Script> s)
      : piece_(std::move(piece)), produced_(std::move(produced)), s_(std::move(s)) {}
  ~EndlessStream() override {
    {
      std::lock_guard lock(s_->mu);
      s_->released = true;
    }
    s_->cv.notify_all();
  }
  std::optional<std::string> next() override {
    *produced_ += piece_.size();
    return piece_;
  }

 private:
  std::string piece_;
  std::shared_ptr<std::atomic<std::size_t>> produced_;
  std::shared_ptr<Script> s_;
};

class ThrowingStream final : public Stream {
 public:
  std::optional<std::string> next() override { throw std::runtime_error("bug"); }
};

// Decodes a chunked body; `complete` once the last chunk is in.
struct Dechunked {
  std::string body;
  bool complete = false;
};

Dechunked dechunk(const std::string& raw) {
  Dechunked d;
  std::size_t at = 0;
  while (true) {
    auto eol = raw.find("\r\n", at);
    if (eol == std::string::npos) return d;
    std::size_t size = std::stoul(raw.substr(at, eol - at), nullptr, 16);
    if (size == 0) {
      d.complete = raw.compare(eol, 4, "\r\n\r\n") == 0;
      return d;
    }
    if (raw.size() < eol + 2 + size + 2) return d;
    d.body += raw.substr(eol + 2, size);
    at = eol + 2 + size + 2;
  }
}

bool eventually(const std::function<bool()>& done) {
  for (auto deadline = Clock::now() + kGuard; Clock::now() < deadline;) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// The loopback send buffer's ceiling: what the kernel may take of one
// answer before the server has to hold the rest itself.
std::size_t max_send_buffer() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_wmem");
  std::size_t lo = 0, def = 0, hi = 0;
  if (f >> lo >> def >> hi) return hi;
  return 16 * 1024 * 1024;
}

}  // namespace

class Streaming : public ::testing::Test {
 protected:
  void SetUp() override {
    init_threads(2);
    start(default_options());
  }
  void TearDown() override {
    if (server) server->stop();
  }

  static ServerOptions default_options() {
    ServerOptions o;
    o.port = free_tcp_port();
    o.timeout = std::chrono::milliseconds(800);
    o.max_connections = 64;
    o.max_streams = 20;
    o.workers = 4;
    o.stream_keepalive = std::chrono::hours(1);  // only where a test wants them
    return o;
  }

  void start(const ServerOptions& o) {
    if (server) server->stop();
    server = make_server(o);
    server->route("GET", "/events", [this](const Request& r) {
      auto script = std::make_shared<Script>();
      {
        std::lock_guard lock(mu);
        scripts.push_back(script);
      }
      cv.notify_all();
      Response out{200, r.query == "retry" ? "retry: 1000\n\n" : "", "text/event-stream"};
      out.headers["Cache-Control"] = "no-cache";
      out.stream = std::make_shared<ScriptedStream>(script);
      out.stream_interval = std::chrono::milliseconds(10);
      return out;
    });
    server->route("GET", "/three", [this](const Request&) {
      auto script = std::make_shared<Script>();
      for (const char* e : {"data: 1\n\n", "data: 2\n\n", "data: 3\n\n"}) script->push(e);
      script->end();
      name("three", script);
      Response out{200, "", "text/event-stream"};
      out.stream = std::make_shared<ScriptedStream>(script);
      out.stream_interval = std::chrono::milliseconds(10);
      return out;
    });
    server->route("GET", "/endless", [this](const Request& r) {
      auto script = std::make_shared<Script>();
      name("endless", script);
      std::size_t size = r.query == "huge" ? max_send_buffer() + 4 * 1024 * 1024 : 64 * 1024;
      Response out{200, "", "application/octet-stream"};
      out.stream = std::make_shared<EndlessStream>(std::string(size, 'x'), produced, script);
      out.stream_interval = std::chrono::milliseconds(10);
      return out;
    });
    server->route("GET", "/throws", [](const Request&) {
      Response out{200, "", "text/event-stream"};
      out.stream = std::make_shared<ThrowingStream>();
      return out;
    });
    server->route("GET", "/plain", [](const Request&) { return Response{200, "plain"}; });
    server->route_health("GET", "/healthz", [](const Request&) { return Response{200, "ok"}; });
    server->start();
  }

  int port() const { return std::stoi(server->url().substr(server->url().rfind(':') + 1)); }

  // The Script of the i-th /events request, once its handler has run.
  std::shared_ptr<Script> script(std::size_t i) {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, kGuard, [&] { return scripts.size() > i; })) return nullptr;
    return scripts[i];
  }

  void name(const std::string& n, std::shared_ptr<Script> script) {
    {
      std::lock_guard lock(mu);
      named[n] = std::move(script);
    }
    cv.notify_all();
  }
  // The Script a handler named so, once it has run.
  std::shared_ptr<Script> named_script(const std::string& n) {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, kGuard, [&] { return named.count(n) > 0; })) return nullptr;
    return named[n];
  }

  // Opens an /events stream and reads its head.
  std::unique_ptr<Socket> open_stream(std::string& buf, const std::string& version = "HTTP/1.1") {
    auto s = std::make_unique<Socket>(port());
    s->send("GET /events " + version + "\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(s->read_until(buf, "\r\n\r\n", kGuard)) << buf;
    return s;
  }

  Result<Response> get(const std::string& path) { return client->send({.url = server->url() + path}); }

  std::unique_ptr<Server> server;
  std::unique_ptr<Client> client = make_client();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::shared_ptr<Script>> scripts;  // under mu
  std::map<std::string, std::shared_ptr<Script>> named;  // under mu
  std::shared_ptr<std::atomic<std::size_t>> produced = std::make_shared<std::atomic<std::size_t>>(0);
};

TEST_F(Streaming, EventsArriveAsTheyAreProducedInOrderAndTheStreamEnds) {
  Socket s(port());
  s.send("GET /events?retry HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string buf;
  ASSERT_TRUE(s.read_until(buf, "\r\n\r\n", kGuard)) << buf;
  const std::string head = buf.substr(0, buf.find("\r\n\r\n") + 4);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  for (const char* h : {"Content-Type: text/event-stream\r\n", "Cache-Control: no-cache\r\n", "Transfer-Encoding: chunked\r\n",
                        "X-Accel-Buffering: no\r\n", "Connection: keep-alive\r\n"}) {
    EXPECT_NE(head.find(h), std::string::npos) << h << " missing in " << head;
  }
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;

  auto script = this->script(0);
  ASSERT_TRUE(script);
  // Each event is read before the test lets the stream produce the next.
  for (const char* event : {"data: 1\n\n", "data: 2\n\n", "data: 3\n\n"}) {
    script->push(event);
    ASSERT_TRUE(s.read_until(buf, std::string(event) + "\r\n", kGuard)) << "not sent while the stream was open: " << event;
  }
  script->end();
  ASSERT_TRUE(s.read_until(buf, "0\r\n\r\n", kGuard)) << buf;
  EXPECT_EQ(buf.substr(head.size()),
            "d\r\nretry: 1000\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\n0\r\n\r\n");
  EXPECT_TRUE(script->wait_released());
  EXPECT_TRUE(eventually([&] { return server->streams() == 0; }));

  // The connection carries the next request.
  buf.clear();
  s.send("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(s.read_until(buf, "\r\n\r\nplain", kGuard)) << buf;
}

TEST_F(Streaming, TheHttpClientReadsAWholeEventStream) {
  auto r = get("/three");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
  EXPECT_EQ(r->header("content-type"), "text/event-stream");
  auto script = named_script("three");
  ASSERT_TRUE(script);
  EXPECT_TRUE(script->wait_released());
}

TEST_F(Streaming, ARequestPipelinedBehindAStreamIsAnsweredAfterItEnds) {
  Socket s(port());
  s.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string buf;
  ASSERT_TRUE(s.read_until(buf, "\r\n\r\n", kGuard));
  auto script = this->script(0);
  ASSERT_TRUE(script);
  script->push("data: x\n\n");
  script->end();
  ASSERT_TRUE(s.read_until(buf, "\r\n\r\nplain", kGuard)) << buf;
  auto end = buf.find("0\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << buf;
  EXPECT_LT(end, buf.find("plain"));
}

TEST_F(Streaming, AClientThatLeavesReleasesItsStream) {
  for (bool with_reset : {false, true}) {
    std::string buf;
    auto s = open_stream(buf);
    auto script = this->script(with_reset ? 1 : 0);
    ASSERT_TRUE(script);
    script->push("data: 1\n\n");
    ASSERT_TRUE(s->read_until(buf, "data: 1", kGuard));
    if (with_reset) {
      s->reset();
    } else {
      s->close();
    }
    EXPECT_TRUE(script->wait_released()) << (with_reset ? "after a reset" : "after a close");
    EXPECT_TRUE(eventually([&] { return server->streams() == 0; }));
  }
}

TEST_F(Streaming, OrdinaryRequestsAndHealthAreAnsweredWhileManyStreamsAreOpen) {
  std::vector<std::unique_ptr<Socket>> open;
  std::vector<std::string> bufs(20);
  for (std::size_t i = 0; i < 20; ++i) open.push_back(open_stream(bufs[i]));  // five times the workers
  EXPECT_EQ(server->streams(), 20u);
  auto plain = get("/plain");
  ASSERT_TRUE(plain.has_value()) << plain.error().message;
  EXPECT_EQ(plain->body, "plain");
  auto health = get("/healthz");
  ASSERT_TRUE(health.has_value()) << health.error().message;
  EXPECT_EQ(health->body, "ok");
  for (std::size_t i = 0; i < 20; ++i) {
    auto script = this->script(i);
    ASSERT_TRUE(script);
    script->end();
  }
  for (std::size_t i = 0; i < 20; ++i) EXPECT_TRUE(open[i]->read_until(bufs[i], "0\r\n\r\n", kGuard)) << i;
}

TEST_F(Streaming, AStreamBeyondMaxStreamsIs503) {
  std::vector<std::unique_ptr<Socket>> open;
  std::vector<std::string> bufs(20);
  for (std::size_t i = 0; i < 20; ++i) open.push_back(open_stream(bufs[i]));
  auto refused = get("/events");
  ASSERT_TRUE(refused.has_value()) << refused.error().message;
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(server->streams(), 20u);
  // Once one leaves, there is room again.
  open[0]->close();
  ASSERT_TRUE(eventually([&] { return server->streams() < 20; }));
  std::string buf;
  auto again = open_stream(buf);
  EXPECT_EQ(buf.rfind("HTTP/1.1 200 OK", 0), 0u) << buf;
}

TEST_F(Streaming, AnHttp10ClientGetsAnUnchunkedBodyEndingAtClose) {
  std::string buf;
  auto s = open_stream(buf, "HTTP/1.0");
  const std::string head = buf.substr(0, buf.find("\r\n\r\n") + 4);
  EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos) << head;
  auto script = this->script(0);
  ASSERT_TRUE(script);
  script->push("data: 1\n\n");
  ASSERT_TRUE(s->read_until(buf, "data: 1\n\n", kGuard)) << buf;
  script->push("data: 2\n\n");
  script->end();
  bool closed = false;
  s->read_until(buf, "", kGuard, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(buf.substr(head.size()), "data: 1\n\ndata: 2\n\n");
}

TEST_F(Streaming, StopEndsOpenStreamsAndReturns) {
  std::vector<std::unique_ptr<Socket>> open;
  std::vector<std::string> bufs(4);
  for (std::size_t i = 0; i < 4; ++i) {
    open.push_back(open_stream(bufs[i], i == 3 ? "HTTP/1.0" : "HTTP/1.1"));
    auto script = this->script(i);
    ASSERT_TRUE(script);
    script->push("data: before stop\n\n");
    ASSERT_TRUE(open[i]->read_until(bufs[i], "data: before stop\n\n", kGuard));
  }
  server->stop();
  EXPECT_EQ(server->streams(), 0u);
  for (std::size_t i = 0; i < 4; ++i) {
    bool closed = false;
    open[i]->read_until(bufs[i], "", kGuard, &closed);
    EXPECT_TRUE(closed) << i;
    std::string body = bufs[i].substr(bufs[i].find("\r\n\r\n") + 4);
    if (i == 3) {
      EXPECT_EQ(body, "data: before stop\n\n");  // HTTP/1.0: the close is the end
    } else {
      auto d = dechunk(body);
      EXPECT_TRUE(d.complete) << i << ": " << body;
      EXPECT_EQ(d.body, "data: before stop\n\n");
    }
    EXPECT_TRUE(script(i)->wait_released());
  }
}

TEST_F(Streaming, AClientThatDoesNotReadIsDroppedAndTheServerHoldsLittle) {
  Socket s(port(), 4096);
  s.send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n");
  // The stream would produce forever; the server stops asking once the
  // client is behind and drops the client that takes nothing.
  auto endless = named_script("endless");
  ASSERT_TRUE(endless);
  EXPECT_TRUE(endless->wait_released());
  EXPECT_LT(produced->load(), max_send_buffer() + 8 * 1024 * 1024);
  EXPECT_TRUE(eventually([&] { return server->streams() == 0; }));
}

TEST_F(Streaming, APieceTooLargeToQueueClosesAClientThatDoesNotRead) {
  auto o = default_options();
  o.timeout = std::chrono::hours(1);  // so only the queue cap can close it
  start(o);
  Socket s(port(), 4096);
  s.send("GET /endless?huge HTTP/1.1\r\nHost: x\r\n\r\n");
  auto endless = named_script("endless");
  ASSERT_TRUE(endless);
  EXPECT_TRUE(endless->wait_released());
  EXPECT_TRUE(eventually([&] { return server->streams() == 0; }));
}

TEST_F(Streaming, AnIdleEventStreamGetsKeepAliveComments) {
  auto o = default_options();
  o.stream_keepalive = std::chrono::milliseconds(20);
  start(o);
  std::string buf;
  auto s = open_stream(buf);
  ASSERT_TRUE(s->read_until(buf, "\r\n: keep-alive\n\n\r\n", kGuard)) << buf;
  auto script = this->script(0);
  ASSERT_TRUE(script);
  script->push("data: 1\n\n");
  script->end();
  ASSERT_TRUE(s->read_until(buf, "0\r\n\r\n", kGuard)) << buf;
  auto d = dechunk(buf.substr(buf.find("\r\n\r\n") + 4));
  EXPECT_TRUE(d.complete);
  EXPECT_NE(d.body.find(": keep-alive\n\ndata: 1\n\n"), std::string::npos) << d.body;
}

TEST_F(Streaming, AStreamThatThrowsIsCutOffWithoutItsEnd) {
  Socket s(port());
  s.send("GET /throws HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string buf;
  bool closed = false;
  s.read_until(buf, "", kGuard, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(buf.rfind("HTTP/1.1 200 OK", 0), 0u) << buf;
  EXPECT_EQ(buf.find("0\r\n\r\n"), std::string::npos) << buf;
  EXPECT_TRUE(eventually([&] { return server->streams() == 0; }));
}
