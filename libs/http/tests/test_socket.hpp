#pragma once
// A raw loopback client socket for the server tests: they need to send
// malformed or partial requests and read exact wire bytes, which no HTTP
// client library allows.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace flurry::http::testing {

struct Socket {
  using Clock = std::chrono::steady_clock;
  int fd = -1;
  // `rcvbuf` > 0 shrinks the receive buffer (set before connecting, so the
  // window the server sees is small too).
  explicit Socket(int port, int rcvbuf = 0) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~Socket() { close(); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  // Closes with a reset instead of a FIN.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  void send(const std::string& bytes) const { (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  // Reads until the peer closes, `until` appears, or `timeout` passes.
  // `closed` tells whether the peer closed.
  std::string read(std::chrono::milliseconds timeout, const std::string& until = "", bool* closed = nullptr) const {
    std::string out;
    read_until(out, until, timeout, closed);
    return out;
  }
  // Appends to `buf` until `buf` holds `until` (then true), the peer
  // closes, or `limit` passes. An empty `until` reads until the close.
  bool read_until(std::string& buf, const std::string& until, std::chrono::milliseconds limit, bool* closed = nullptr) const {
    auto deadline = Clock::now() + limit;
    if (closed) *closed = false;
    char chunk[4096];
    while (Clock::now() < deadline) {
      if (!until.empty() && buf.find(until) != std::string::npos) return true;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      auto n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        break;
      }
      buf.append(chunk, static_cast<std::size_t>(n));
    }
    return !until.empty() && buf.find(until) != std::string::npos;
  }
};

}  // namespace flurry::http::testing
