// Hostile bytes on every HTTP endpoint of the running stack, sent over raw
// sockets so that no client library tidies them up first: path traversal,
// malformed request lines, malformed and truncated JSON on the API, wrong
// tokens, and clients that open connections and send nothing. Every answer
// is a clear 4xx (or the endpoint's normal answer), nothing leaks a file,
// no service dies, and slow clients do not stop others being served.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "flurry/core/crypto.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/text.hpp"
#include "flurry/http/http.hpp"
#include "flurry/stack/stack.hpp"
#include "local_stack.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace std::chrono_literals;

namespace {

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` as is and reads until the server closes or `timeout`.
std::string raw(int port, const std::string& request, std::chrono::milliseconds timeout = 10s) {
  int fd = connect_to(port);
  if (fd < 0) return "<connect failed>";
  std::size_t sent = 0;
  while (sent < request.size()) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    // One answer is enough: stop once its body (Content-Length) is in.
    auto end = out.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    auto lower = text::to_lower(out.substr(0, end));
    auto cl = lower.find("content-length:");
    if (cl != std::string::npos && out.size() >= end + 4 + std::stoul(lower.substr(cl + 15))) break;
  }
  ::close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

std::string get(const std::string& target) { return "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"; }

std::string post(const std::string& target, const std::string& body, const std::string& extra_headers = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST(BadInput, EveryEndpointAnswersHostileRequestsClearlyAndStaysUp) {
  test::TempDir tmp("flurry-bad-input");
  auto options = test::local_stack_options(tmp);
  // Short, so that the test sees slow clients cut off.
  options.extra_config.push_back("http.request_timeout=\"2s\"");
  stack::Stack stack(options);
  auto started = stack.start();
  ASSERT_TRUE(started.has_value()) << started.error().message;

  const std::vector<std::string> traversals = {
      "/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd",
      "/api/jobs/..%2F..%2F..%2Fetc%2Fpasswd/log", "/api/evals/../../etc/passwd", "/api/jobs/%00/log", "/metrics/../../etc/passwd",
  };
  for (const auto& name : stack::service_names()) {
    SCOPED_TRACE(name);
    const int port = port_of(stack.service_url(name));
    for (const auto& t : traversals) {
      auto r = raw(port, get(t));
      const int st = status_of(r);
      EXPECT_TRUE(st >= 400 && st < 500) << t << " -> " << r.substr(0, 200);
      EXPECT_EQ(r.find("root:"), std::string::npos) << t << " leaked a file";
    }
    // Not HTTP at all, a request line with no target, a header line with
    // no colon, an absurd Content-Length: refused or the connection
    // closed, never a crash.
    for (const std::string& junk : {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), std::string("GET\r\n\r\n"),
                                     std::string("GET / HTTP/1.1\r\nno colon here\r\n\r\n"),
                                     std::string("POST /api/rebuild HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n{}")}) {
      auto r = raw(port, junk, 5s);
      const int st = status_of(r);
      EXPECT_TRUE(st == 0 || (st >= 400 && st < 500)) << text::truncate_utf8(r, 200);
    }
    auto health = raw(port, get("/healthz"));
    EXPECT_EQ(status_of(health), 200) << health.substr(0, 300);
  }

  // The API: no token, a wrong token, malformed and truncated JSON, wrong
  // types, hostile ids. Clear 4xx with a JSON error each time.
  const int web = port_of(stack.service_url("web"));
  auto token = text::trim(read_file(stack.options().state_dir + "/secrets/api-token").value_or(""));
  ASSERT_FALSE(token.empty());
  const std::string auth = "Authorization: Bearer " + token + "\r\n";
  EXPECT_EQ(status_of(raw(web, post("/api/rebuild", R"({"drv_paths":[]})"))), 401);
  EXPECT_EQ(status_of(raw(web, post("/api/rebuild", R"({"drv_paths":[]})", "Authorization: Bearer " + token + "x\r\n"))), 401);
  EXPECT_EQ(status_of(raw(web, post("/api/rebuild", R"({"drv_paths":[]})", "Authorization: Basic " + crypto::base64("a:" + token) + "\r\n"))), 401);
  for (const std::string& body : {std::string("{"), std::string(R"({"drv_paths": ["/nix/store/)"), std::string("[]"), std::string("null"),
                                  std::string(R"({"drv_paths": "not a list"})"), std::string(R"({"drv_paths": [1, 2]})"),
                                  std::string(R"({"drv_paths": ["../../etc/passwd"]})"), std::string("\xff\xfe"),
                                  std::string(R"({"drv_paths": [")" + std::string(100000, 'a') + "\"]}")}) {
    for (const std::string& target : {std::string("/api/rebuild"), std::string("/api/approve"), std::string("/api/evals/x/cancel")}) {
      auto r = raw(web, post(target, body, auth));
      const int st = status_of(r);
      EXPECT_TRUE(st >= 400 && st < 500) << target << " " << text::truncate_utf8(body, 60) << " -> " << r.substr(0, 300);
      EXPECT_NE(r.find("\"error\""), std::string::npos) << r.substr(0, 300);
    }
  }
  for (const std::string& id : {std::string("%24%28touch%20%2Ftmp%2Fpwned%29"), std::string("%0d%0aSet-Cookie:%20x"),
                                std::string(3000, 'e'), std::string("%ff%fe")}) {
    auto r = raw(web, get("/api/evals/" + id));
    const int st = status_of(r);
    EXPECT_TRUE(st == 404 || st == 400) << r.substr(0, 300);
    EXPECT_EQ(r.find("\r\nSet-Cookie"), std::string::npos) << "a header was injected";
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/pwned"));

  // Slow clients: connections that send half a request and then nothing
  // do not keep others from being served, and are cut off (408, closed)
  // once http.request_timeout has passed since their first byte.
  const int ingest = port_of(stack.webhook_url());
  std::vector<int> slow;
  for (int i = 0; i < 32; ++i) {
    for (int port : {ingest, web}) {
      int fd = connect_to(port);
      ASSERT_GE(fd, 0);
      const std::string partial = "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"zen\":";
      (void)::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL);
      slow.push_back(fd);
    }
  }
  const auto slow_started = std::chrono::steady_clock::now();
  for (int port : {ingest, web}) {
    auto r = raw(port, get("/healthz"), 10s);
    EXPECT_EQ(status_of(r), 200) << "served while 32 slow clients hold connections: " << r.substr(0, 200);
  }
  int cut_off = 0;
  for (int fd : slow) {
    std::string got;
    char buf[512];
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) break;
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        cut_off += status_of(got) == 408 ? 1 : 0;
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
  }
  const auto waited = std::chrono::steady_clock::now() - slow_started;
  EXPECT_EQ(cut_off, static_cast<int>(slow.size())) << "every slow client gets 408 and a closed connection";
  EXPECT_LT(waited, 10s) << "a request timeout of 2 s cuts slow clients off long before 10 s";

  EXPECT_TRUE(stack.dead_children().empty());
  EXPECT_TRUE(stack.stop().empty()) << "every service stops cleanly on SIGTERM";
}
