// Load generator for bench/load_bench.py: signed GitHub push webhooks (or
// plain GETs, for a baseline) at a fixed rate over keep-alive connections,
// from a process of its own; and the check that every webhook answered 2xx
// reached JetStream.
//
//   flurry-webhook-load send --url http://127.0.0.1:P/webhooks/github
//       --secret-file F --rate 1000 --duration 10 --connections 32
//       --accepted-out ids.txt
//   flurry-webhook-load send --url http://127.0.0.1:P/healthz --get ...
//   flurry-webhook-load verify --nats nats://127.0.0.1:N --ids ids.txt
//
// The rate is open-loop: request k is due at start + k/rate whether or not
// earlier ones were answered, and its latency counts from when it was due,
// so a server that falls behind shows it in the percentiles instead of
// slowing the generator down (no coordinated omission). A connection
// carries one request at a time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "flurry/bus/nats_bus.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/stack/stack.hpp"

using namespace flurry;
using Clock = std::chrono::steady_clock;

namespace {

struct Target {
  std::string host;
  int port = 0;
  std::string path;
};

Target parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) throw std::runtime_error("only http:// URLs: " + url);
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  auto colon = authority.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("the URL needs a port: " + url);
  return {authority.substr(0, colon), std::stoi(authority.substr(colon + 1)),
          slash == std::string::npos ? "/" : rest.substr(slash)};
}

struct Prepared {
  std::string bytes;
  std::string delivery;
};

std::string hex40(std::uint64_t n) {
  char buf[41];
  std::snprintf(buf, sizeof buf, "%040llx", static_cast<unsigned long long>(n));
  return buf;
}

std::vector<Prepared> prepare(const Target& t, bool get, const std::string& secret, std::size_t n, const std::string& run) {
  std::vector<Prepared> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Prepared p;
    if (get) {
      p.bytes = "GET " + t.path + " HTTP/1.1\r\nHost: " + t.host + "\r\n\r\n";
      out.push_back(std::move(p));
      continue;
    }
    p.delivery = "load-" + run + "-" + std::to_string(i);
    auto body = stack::github_push_payload("load", "repo" + std::to_string(i % 16), "https://example.invalid/load/repo.git",
                                           "main", "main", std::string(40, '0'), hex40(i + 1));
    p.bytes = "POST " + t.path + " HTTP/1.1\r\nHost: " + t.host +
              "\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: " + p.delivery +
              "\r\nX-Hub-Signature-256: sha256=" + crypto::hmac_sha256_hex(secret, body) +
              "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    out.push_back(std::move(p));
  }
  return out;
}

struct Conn {
  int fd = -1;
  bool connected = false;
  long request = -1;  // index in flight, -1 = idle
  Clock::time_point due;
  std::string out;
  std::size_t sent = 0;
  std::string in;
};

class Loader {
 public:
  Loader(Target t, std::vector<Prepared> reqs, int connections, double rate)
      : target_(std::move(t)), reqs_(std::move(reqs)), conns_(static_cast<std::size_t>(connections)), rate_(rate) {}

  int run(const std::string& accepted_out) {
    ep_ = ::epoll_create1(0);
    for (std::size_t i = 0; i < conns_.size(); ++i) open(i);
    start_ = Clock::now();
    std::vector<epoll_event> evs(256);
    std::size_t next = 0;
    const auto give_up = [&] { return start_ + duration_of_all() + std::chrono::seconds(15); };
    while (answered_ + failed_ < reqs_.size() && Clock::now() < give_up()) {
      // Hand every request that is due to an idle connection.
      auto now = Clock::now();
      for (std::size_t i = 0; i < conns_.size() && next < reqs_.size(); ++i) {
        auto& c = conns_[i];
        if (!c.connected || c.request >= 0) continue;
        auto due = due_of(next);
        if (due > now) break;
        c.request = static_cast<long>(next);
        c.due = rate_ > 0 ? due : now;
        c.out = reqs_[next].bytes;
        c.sent = 0;
        ++next;
        write_some(i);
      }
      int timeout_ms = 1;
      if (next < reqs_.size()) {
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due_of(next) - Clock::now()).count();
        timeout_ms = static_cast<int>(std::clamp<long long>(wait, 0, 50));
      } else {
        timeout_ms = 50;
      }
      int n = ::epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), timeout_ms);
      for (int k = 0; k < n; ++k) {
        auto i = static_cast<std::size_t>(evs[static_cast<std::size_t>(k)].data.u64);
        auto e = evs[static_cast<std::size_t>(k)].events;
        if (e & EPOLLOUT) {
          if (!conns_[i].connected) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(conns_[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
              reconnect(i);
              continue;
            }
            conns_[i].connected = true;
          }
          write_some(i);
        }
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_some(i);
      }
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    report(elapsed, next);
    if (!accepted_out.empty()) {
      std::ofstream f(accepted_out);
      for (const auto& id : accepted_) f << id << "\n";
    }
    return 0;
  }

 private:
  std::chrono::nanoseconds duration_of_all() const {
    if (rate_ <= 0) return std::chrono::seconds(600);
    return std::chrono::nanoseconds(static_cast<long long>(1e9 * static_cast<double>(reqs_.size()) / rate_));
  }
  Clock::time_point due_of(std::size_t k) const {
    if (rate_ <= 0) return start_;
    return start_ + std::chrono::nanoseconds(static_cast<long long>(1e9 * static_cast<double>(k) / rate_));
  }

  void open(std::size_t i) {
    auto& c = conns_[i];
    c = Conn{};
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(target_.port));
    ::inet_pton(AF_INET, target_.host == "localhost" ? "127.0.0.1" : target_.host.c_str(), &a.sin_addr);
    int rc = ::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    c.connected = rc == 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = i;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
  }

  void reconnect(std::size_t i) {
    auto& c = conns_[i];
    if (c.request >= 0) {
      ++failed_;
      ++errors_;
    }
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    ++reconnects_;
    open(i);
  }

  void write_some(std::size_t i) {
    auto& c = conns_[i];
    while (c.connected && c.sent < c.out.size()) {
      auto n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      reconnect(i);
      return;
    }
  }

  void read_some(std::size_t i) {
    auto& c = conns_[i];
    char buf[16384];
    while (true) {
      auto n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      // Closed: whatever was in flight failed unless its answer is whole.
      parse(i);
      reconnect(i);
      return;
    }
    parse(i);
  }

  // Takes one whole answer off the connection, if there is one.
  void parse(std::size_t i) {
    auto& c = conns_[i];
    if (c.request < 0) return;
    auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return;
    std::string head = c.in.substr(0, end);
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    std::size_t length = 0;
    if (auto cl = lower.find("content-length:"); cl != std::string::npos) length = std::stoul(lower.substr(cl + 15));
    if (c.in.size() < end + 4 + length) return;
    int status = head.size() >= 12 ? std::atoi(head.substr(9, 3).c_str()) : 0;
    c.in.erase(0, end + 4 + length);
    auto latency = Clock::now() - c.due;
    latencies_us_.push_back(std::chrono::duration_cast<std::chrono::microseconds>(latency).count());
    ++by_status_[status];
    ++answered_;
    if (status >= 200 && status < 300 && !reqs_[static_cast<std::size_t>(c.request)].delivery.empty()) {
      accepted_.push_back(reqs_[static_cast<std::size_t>(c.request)].delivery);
    }
    c.request = -1;
    if (lower.find("connection: close") != std::string::npos) reconnect(i);
  }

  void report(double elapsed, std::size_t issued) {
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto pct = [&](double p) -> double {
      if (latencies_us_.empty()) return 0;
      auto k = static_cast<std::size_t>(p * static_cast<double>(latencies_us_.size() - 1));
      return static_cast<double>(latencies_us_[k]) / 1000.0;
    };
    std::size_t ok = 0;
    std::string statuses;
    for (auto [s, n] : by_status_) {
      if (s >= 200 && s < 300) ok += n;
      statuses += (statuses.empty() ? "" : ",") + std::string("\"") + std::to_string(s) + "\":" + std::to_string(n);
    }
    std::printf(
        "{\"planned\":%zu,\"issued\":%zu,\"answered\":%zu,\"ok\":%zu,\"errors\":%zu,\"reconnects\":%zu,"
        "\"elapsed_s\":%.3f,\"answered_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"statuses\":{%s}}\n",
        reqs_.size(), issued, answered_, ok, failed_, reconnects_, elapsed, static_cast<double>(answered_) / elapsed,
        pct(0.50), pct(0.90), pct(0.99), pct(0.999), latencies_us_.empty() ? 0.0 : static_cast<double>(latencies_us_.back()) / 1000.0,
        statuses.c_str());
  }

  Target target_;
  std::vector<Prepared> reqs_;
  std::vector<Conn> conns_;
  double rate_;
  int ep_ = -1;
  Clock::time_point start_;
  std::size_t answered_ = 0, failed_ = 0, errors_ = 0, reconnects_ = 0;
  std::map<int, std::size_t> by_status_;
  std::vector<long long> latencies_us_;
  std::vector<std::string> accepted_;
};

// Drains FLURRY_CHANGES (nothing else may consume it during the bench) and
// compares the change ids found with the deliveries answered 2xx.
int verify(const std::string& nats_url, const std::string& ids_file, double settle_s) {
  std::set<std::string> expected;
  {
    std::ifstream f(ids_file);
    for (std::string line; std::getline(f, line);) {
      if (!line.empty()) expected.insert("github:" + line);
    }
  }
  bus::NatsOptions o;
  o.url = nats_url;
  o.name = "flurry-webhook-load-verify";
  auto b = bus::connect_nats(o);
  if (!b) {
    std::cerr << "cannot connect to " << nats_url << ": " << b.error().message << "\n";
    return 2;
  }
  std::set<std::string> found;
  std::size_t stored = 0, undecodable = 0;
  std::atomic<bool> stop{false};
  std::atomic<long long> last_ms{std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count()};
  bus::ConsumerSpec spec{std::string(subjects::kChangesStream), "flurry-load-verify", subjects::change("github"), 5,
                         std::chrono::seconds(30), 1};
  std::thread watchdog([&] {
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
      if (now - last_ms > static_cast<long long>(settle_s * 1000)) stop = true;
    }
  });
  auto r = (*b)->consume(
      spec,
      [&](const bus::Delivery& d) {
        ++stored;
        auto c = msg::decode_change_event(d.data);
        if (c) found.insert(c->id);
        else ++undecodable;
        last_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
        return bus::Disposition::ack();
      },
      stop);
  stop = true;
  watchdog.join();
  if (!r) {
    std::cerr << "consuming failed: " << r.error().message << "\n";
    return 2;
  }
  std::size_t missing = 0;
  for (const auto& id : expected) missing += found.count(id) ? 0 : 1;
  std::printf("{\"accepted\":%zu,\"stored\":%zu,\"found\":%zu,\"missing\":%zu,\"undecodable\":%zu}\n", expected.size(), stored,
              found.size(), missing, undecodable);
  return missing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Webhook load generator for bench/load_bench.py"};
  app.require_subcommand(1);
  auto* send = app.add_subcommand("send", "send webhooks (or GETs) at a fixed rate");
  std::string url, secret_file, accepted_out;
  double rate = 1000, duration = 10;
  int connections = 32;
  bool get = false;
  send->add_option("--url", url)->required();
  send->add_option("--secret-file", secret_file);
  send->add_option("--rate", rate, "requests per second (0: as fast as answers come)");
  send->add_option("--duration", duration, "seconds of load");
  send->add_option("--connections", connections);
  send->add_flag("--get", get, "plain GETs of the URL instead of webhooks (a baseline)");
  send->add_option("--accepted-out", accepted_out, "file for the delivery ids answered 2xx");
  auto* check = app.add_subcommand("verify", "check that every accepted delivery is in JetStream");
  std::string nats_url, ids_file;
  double settle = 3;
  check->add_option("--nats", nats_url)->required();
  check->add_option("--ids", ids_file)->required();
  check->add_option("--settle", settle, "seconds without a new message that end the drain");
  CLI11_PARSE(app, argc, argv);
  try {
    if (*check) return verify(nats_url, ids_file, settle);
    auto target = parse_url(url);
    std::string secret;
    if (!get) {
      if (secret_file.empty()) throw std::runtime_error("--secret-file is needed for webhooks");
      secret = read_secret_file(secret_file);
    }
    auto n = static_cast<std::size_t>(std::max(1.0, (rate > 0 ? rate : 2000) * duration));
    auto run = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    Loader loader(target, prepare(target, get, secret, n, run), std::max(1, connections), rate);
    return loader.run(accepted_out);
  } catch (const std::exception& e) {
    std::cerr << "flurry-webhook-load: " << e.what() << "\n";
    return 2;
  }
}
