#include "flurry/fakes/raw_http_client.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>

#include "flurry/core/text.hpp"

namespace flurry::fakes {
namespace {

struct Target {
  std::string host, port, path_and_query;
};

std::optional<Target> parse_url(const std::string& url) {
  if (!text::starts_with(url, "http://")) return std::nullopt;
  auto rest = url.substr(7);
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  Target t{authority, "80", slash == std::string::npos ? "/" : rest.substr(slash)};
  if (auto colon = authority.rfind(':'); colon != std::string::npos) {
    t.host = authority.substr(0, colon);
    t.port = authority.substr(colon + 1);
  }
  return t;
}

// A connected socket, or -1.
int connect_to(const Target& t) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (auto* a = found; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

// Everything the server sends until it closes, within `timeout`.
std::optional<std::string> read_all(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out;
  char buf[16384];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
    auto n = read(fd, buf, sizeof buf);
    if (n < 0) return std::nullopt;
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::string unchunked(const std::string& body) {
  std::string out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto eol = body.find("\r\n", pos);
    if (eol == std::string::npos) break;
    auto size = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
    if (size == 0) break;
    out += body.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return out;
}

std::optional<http::Response> parse_response(const std::string& raw) {
  auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || !text::starts_with(raw, "HTTP/1.")) return std::nullopt;
  auto lines = text::split(raw.substr(0, head_end), '\n');
  http::Response r;
  r.status = std::atoi(lines[0].substr(9, 3).c_str());
  r.content_type.clear();
  for (std::size_t i = 1; i < lines.size(); ++i) {
    auto colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    auto name = text::to_lower(text::trim(lines[i].substr(0, colon)));
    auto value = text::trim(lines[i].substr(colon + 1));
    if (name == "content-type") r.content_type = value;
    r.headers[name] = r.headers.count(name) ? r.headers[name] + "\n" + value : value;  // Set-Cookie: one per line
  }
  r.body = raw.substr(head_end + 4);
  if (text::to_lower(r.header("transfer-encoding")) == "chunked") r.body = unchunked(r.body);
  return r;
}

}  // namespace

Result<http::Response> RawHttpClient::send(const http::ClientRequest& req) {
  auto t = parse_url(req.url);
  if (!t) return fail(Error::rejected("RawHttpClient: only http:// URLs"));
  int fd = connect_to(*t);
  if (fd < 0) return fail(Error::transient("RawHttpClient: cannot connect to " + t->host + ":" + t->port));
  std::string head = req.method + " " + t->path_and_query + " HTTP/1.1\r\nHost: " + t->host + ":" + t->port +
                     "\r\nConnection: close\r\nContent-Length: " + std::to_string(req.body.size()) + "\r\n";
  for (const auto& [k, v] : req.headers) head += k + ": " + v + "\r\n";
  const std::string out = head + "\r\n" + req.body;
  std::size_t sent = 0;
  while (sent < out.size()) {
    auto n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  auto raw = sent == out.size() ? read_all(fd, req.timeout) : std::nullopt;
  close(fd);
  if (!raw) return fail(Error::transient("RawHttpClient: no answer from " + t->host + ":" + t->port));
  auto r = parse_response(*raw);
  if (!r) return fail(Error::transient("RawHttpClient: not an HTTP answer"));
  return *r;
}

}  // namespace flurry::fakes
