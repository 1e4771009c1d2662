#include "flurry/core/child.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

using namespace flurry;
using namespace std::chrono_literals;

namespace {

// A listening socket this test process holds, as another program would.
struct HeldPort {
  int fd = -1;
  int port = 0;
  HeldPort() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~HeldPort() { ::close(fd); }
};

// A server that listens on argv's port, or exits 1 if it cannot bind it.
ChildSpec server_on(int port) {
  return {.argv = {"python3", "-c",
                   "import socket, sys, time\n"
                   "s = socket.socket()\n"
                   "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
                   "s.listen()\n"
                   "time.sleep(60)\n",
                   std::to_string(port)}};
}

}  // namespace

TEST(Child, FreePortsAreNeverHandedOutTwice) {
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    int p = free_tcp_port();
    ASSERT_GT(p, 0);
    EXPECT_TRUE(seen.insert(p).second) << p;
  }
}

TEST(Child, AServerWhosePortIsTakenIsStartedAgainOnAFreshOne) {
  HeldPort held;
  std::vector<int> tried;
  auto started = spawn_listening(
      [&](int port) -> Result<ChildSpec> {
        tried.push_back(port);
        return server_on(port);
      },
      held.port, 20s);
  ASSERT_TRUE(started.has_value()) << started.error().message;
  ASSERT_EQ(tried.size(), 2u);
  EXPECT_EQ(tried[0], held.port);
  EXPECT_NE(started->port, held.port);
  EXPECT_EQ(started->port, tried[1]);
  EXPECT_TRUE(started->child->listens_on(started->port));
  EXPECT_FALSE(started->child->listens_on(held.port));
  started->child->stop(5s);
}

TEST(Child, AServerThatFailsForAnotherReasonIsNotRetried) {
  int calls = 0;
  auto started = spawn_listening(
      [&](int) -> Result<ChildSpec> {
        ++calls;
        return ChildSpec{.argv = {"sh", "-c", "exit 3"}};
      },
      0, 20s);
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_NE(started.error().message.find("exited with status 3"), std::string::npos) << started.error().message;
}

TEST(Child, SomethingElseAnsweringOnThePortIsNotTheChildListening) {
  HeldPort held;
  // The child lives but never binds: the port answers, yet not for it.
  auto started = spawn_listening([&](int) -> Result<ChildSpec> { return ChildSpec{.argv = {"sleep", "30"}}; }, held.port, 1s);
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().message.find("did not listen"), std::string::npos) << started.error().message;
}
