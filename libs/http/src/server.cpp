// The HTTP/1.1 server every service shares: one epoll thread owns the
// sockets and reads requests with deadlines; a small pool runs handlers.
//
// It is our own rather than cpprest's listener because that one enforces no
// read timeout: a client that sends half a request holds its connection,
// and enough of them hold the service. Here a request must arrive whole
// within `timeout` of its first byte (else 408 and close), an idle
// keep-alive connection is closed after `timeout`, and the number of
// connections is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "flurry/core/log.hpp"
#include "flurry/http/http.hpp"
#include "request_reader.hpp"

namespace flurry::http {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 64 * 1024;
// After an answer that closes the connection, unread request bytes are
// drained this long so the client sees the answer rather than a reset.
constexpr auto kLinger = std::chrono::seconds(2);

struct Route {
  std::string method;
  std::string path;
  bool prefix;
  bool own_lane;  // served by the health thread, not the shared workers
  Handler handler;
};

struct Connection {
  enum class Phase { kReading, kHandling, kWriting, kLingering };
  int fd = -1;
  std::uint64_t id = 0;
  Phase phase = Phase::kReading;
  std::string in;
  std::string out;
  std::size_t out_sent = 0;
  bool close_after_write = false;
  RequestReader reader;
  Clock::time_point deadline;
  bool request_deadline_set = false;
  bool peer_closed = false;  // the client shut its sending side
  std::size_t accounted = 0;  // this connection's share of buffered_
  std::uint32_t events = 0;  // what epoll watches for now
  explicit Connection(ReaderLimits l) : reader(l) {}
};

struct Job {
  int fd;
  std::uint64_t id;
  Request request;
  bool keep_alive;
  const Route* route;  // null: no route (404 or 405 in `status`)
  int status;
};

struct Done {
  int fd;
  std::uint64_t id;
  std::string bytes;
  bool keep_alive;
};

class EpollServer final : public Server {
 public:
  explicit EpollServer(ServerOptions o) : options_(std::move(o)) {
    limits_.max_body = options_.max_body;
  }
  ~EpollServer() override { stop(); }

  void route(const std::string& method, const std::string& path, Handler handler) override {
    add_route(method, path, false, std::move(handler));
  }
  void route_health(const std::string& method, const std::string& path, Handler handler) override {
    add_route(method, path, true, std::move(handler));
  }

  void start() override {
    listen_fd_ = open_listener();
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      close_all_fds();
      throw std::runtime_error("cannot listen on " + url() + ": " + std::strerror(errno));
    }
    watch(listen_fd_, EPOLLIN);
    watch(wake_fd_, EPOLLIN);
    stopping_ = false;
    int n = std::max(1, options_.workers);
    for (int i = 0; i < n; ++i) workers_.emplace_back([this] { work(shared_); });
    workers_.emplace_back([this] { work(health_); });
    loop_ = std::thread([this] { run(); });
  }

  void stop() override {
    if (!loop_.joinable()) return;
    stopping_ = true;
    wake();
    loop_.join();
    {
      std::lock_guard lock(jobs_mu_);
      jobs_stop_ = true;
    }
    shared_.cv.notify_all();
    health_.cv.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    for (auto& [fd, c] : connections_) ::close(fd);
    connections_.clear();
    close_all_fds();
    jobs_stop_ = false;
    shared_.jobs.clear();
    health_.jobs.clear();
    done_.clear();
  }

  std::string url() const override {
    bool v6 = options_.address.find(':') != std::string::npos;
    return "http://" + (v6 ? "[" + options_.address + "]" : options_.address) + ":" + std::to_string(options_.port);
  }

 private:
  struct Lane {
    std::condition_variable cv;
    std::deque<Job> jobs;
  };

  void add_route(const std::string& method, const std::string& path, bool own_lane, Handler handler) {
    bool prefix = !path.empty() && path.back() == '*';
    routes_.push_back({method, prefix ? path.substr(0, path.size() - 1) : path, prefix, own_lane, std::move(handler)});
  }

  int open_listener() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(options_.port);
    const char* host = options_.address.empty() || options_.address == "*" ? nullptr : options_.address.c_str();
    if (int rc = ::getaddrinfo(host, port.c_str(), &hints, &found); rc != 0) {
      throw std::runtime_error("cannot listen on " + url() + ": " + ::gai_strerror(rc));
    }
    std::string error = "no address";
    int fd = -1;
    for (auto* a = found; a && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        error = std::strerror(errno);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
        error = std::strerror(errno);
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(found);
    if (fd < 0) throw std::runtime_error("cannot listen on " + url() + ": " + error);
    return fd;
  }

  void close_all_fds() {
    for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  void watch(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }

  void set_events(Connection& c, std::uint32_t events) {
    if (c.events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = c.fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
    c.events = events;
  }

  void wake() {
    std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }

  // The event loop: the only thread that touches sockets and connections.
  void run() {
    std::vector<epoll_event> events(256);
    auto next_sweep = Clock::now();
    bool accepting = true;
    Clock::time_point resume_accept;
    while (!stopping_) {
      int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        int fd = events[static_cast<std::size_t>(i)].data.fd;
        auto ev = events[static_cast<std::size_t>(i)].events;
        if (fd == wake_fd_) {
          std::uint64_t v;
          while (::read(wake_fd_, &v, sizeof v) > 0) {
          }
          finish_handled();
        } else if (fd == listen_fd_) {
          if (!accept_all()) {
            // Out of descriptors: stop listening for a moment instead of
            // spinning on a listener that stays readable.
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
            accepting = false;
            resume_accept = Clock::now() + std::chrono::milliseconds(100);
          }
        } else {
          on_socket(fd, ev);
        }
      }
      auto now = Clock::now();
      if (!accepting && now >= resume_accept) {
        watch(listen_fd_, EPOLLIN);
        accepting = true;
      }
      if (now >= next_sweep) {
        sweep(now);
        next_sweep = now + std::chrono::milliseconds(100);
      }
    }
  }

  // False when accept failed for want of descriptors.
  bool accept_all() {
    while (true) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          log::warn("http.accept_failed", "cannot accept a connection", {{"url", url()}, {"error", std::strerror(errno)}});
          return false;
        }
        return true;  // EAGAIN: all taken
      }
      if (connections_.size() >= options_.max_connections) {
        ::close(fd);
        ++refused_;
        if ((refused_ & (refused_ - 1)) == 0) {
          log::warn("http.connections_full", "refused a connection: too many open",
                    {{"url", url()}, {"max_connections", std::to_string(options_.max_connections)},
                     {"refused_total", std::to_string(refused_)}});
        }
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Connection>(limits_);
      c->fd = fd;
      c->id = ++next_id_;
      c->deadline = Clock::now() + options_.timeout;  // idle until its first byte
      c->events = EPOLLIN;
      watch(fd, EPOLLIN);
      connections_[fd] = std::move(c);
    }
  }

  void close_connection(int fd) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    if (auto it = connections_.find(fd); it != connections_.end()) buffered_ -= it->second->accounted;
    connections_.erase(fd);
  }

  // Keeps buffered_ equal to the request bytes all connections hold.
  void account(Connection& c) {
    std::size_t now = c.in.size() + (c.phase == Connection::Phase::kReading ? c.reader.request().body.size() : 0);
    buffered_ += now;
    buffered_ -= c.accounted;
    c.accounted = now;
  }

  Connection* find(int fd, std::uint64_t id) {
    auto it = connections_.find(fd);
    return it == connections_.end() || it->second->id != id ? nullptr : it->second.get();
  }

  void on_socket(int fd, std::uint32_t ev) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    Connection* c = it->second.get();
    const std::uint64_t id = c->id;
    if ((ev & EPOLLOUT) && !c->out.empty()) {
      flush(*c);
      if (!(c = find(fd, id))) return;
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    switch (c->phase) {
      case Connection::Phase::kLingering:
        if (!drain(*c)) close_connection(fd);
        return;
      case Connection::Phase::kReading:
        on_readable(*c);
        return;
      default:
        // Handling or writing: input waits, but a connection that failed
        // or hung up is gone (its answer, if any, is dropped).
        if (ev & (EPOLLHUP | EPOLLERR)) close_connection(fd);
        return;
    }
  }

  void on_readable(Connection& c) {
    const int fd = c.fd;
    auto got = read_into(c);
    if (got == Read::kFailed) {
      close_connection(fd);
      return;
    }
    if (got == Read::kEof) c.peer_closed = true;
    const std::uint64_t id = c.id;
    advance(c);
    Connection* still = find(fd, id);
    if (!still) return;
    account(*still);
    if (still->phase != Connection::Phase::kReading) return;
    if (still->peer_closed) {
      close_connection(fd);  // it stopped sending before a request was whole
    } else if (buffered_ > options_.max_buffered && still->accounted > 0) {
      // Many large requests arriving at once: refuse the one that tipped
      // the balance rather than hold unbounded memory.
      log::warn("http.buffers_full", "refused a request: too much request data buffered",
                {{"url", url()}, {"max_buffered_bytes", std::to_string(options_.max_buffered)}});
      answer_and_close(*still, 503, "server busy: too many large requests at once, retry later");
    }
  }

  enum class Read { kOk, kEof, kFailed };

  Read read_into(Connection& c) {
    char buf[kReadChunk];
    // Never buffer much more than one request may be.
    const std::size_t cap = limits_.max_head + limits_.max_body + kReadChunk;
    while (c.in.size() < cap) {
      auto n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return Read::kEof;
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Read::kOk : Read::kFailed;
    }
    return Read::kOk;
  }

  // Reads as far as the buffered bytes allow and acts on the result.
  void advance(Connection& c) {
    if (c.phase != Connection::Phase::kReading) return;
    auto status = c.reader.consume(c.in);
    if (c.reader.started() && !c.request_deadline_set) {
      // The whole request must arrive within the timeout of its first byte:
      // trickling bytes does not extend it.
      c.request_deadline_set = true;
      c.deadline = Clock::now() + options_.timeout;
    }
    if (status == RequestReader::Status::kNeedMore) {
      if (c.reader.take_continue() && !c.peer_closed) {
        c.out += "HTTP/1.1 100 Continue\r\n\r\n";
        flush(c);
      }
      return;
    }
    if (status == RequestReader::Status::kFailed) {
      answer_and_close(c, c.reader.error_status(), c.reader.error_message());
      return;
    }
    c.phase = Connection::Phase::kHandling;
    set_events(c, 0);
    Job job{c.fd, c.id, std::move(c.reader.request()), c.reader.keep_alive() && !c.peer_closed, nullptr, 404};
    account(c);  // the body is the handler's now (bounded by the workers)
    match(job);
    Lane& lane = job.route && job.route->own_lane ? health_ : shared_;
    {
      std::lock_guard lock(jobs_mu_);
      lane.jobs.push_back(std::move(job));
    }
    lane.cv.notify_one();
  }

  void answer_and_close(Connection& c, int status, const std::string& message) {
    c.phase = Connection::Phase::kWriting;
    c.close_after_write = true;
    c.out += serialize_response({status, message + "\n"}, false);
    c.deadline = Clock::now() + options_.timeout;
    flush(c);
  }

  void finish_handled() {
    std::deque<Done> done;
    {
      std::lock_guard lock(jobs_mu_);
      done.swap(done_);
    }
    for (auto& d : done) {
      Connection* found = find(d.fd, d.id);
      if (!found) continue;  // the client left
      Connection& c = *found;
      c.phase = Connection::Phase::kWriting;
      c.close_after_write = !d.keep_alive || c.peer_closed;
      c.out += d.bytes;
      c.deadline = Clock::now() + options_.timeout;
      flush(c);
    }
  }

  // Sends what it can without blocking; false if the peer is gone.
  bool send_some(Connection& c) {
    while (c.out_sent < c.out.size()) {
      auto n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
    c.out.clear();
    c.out_sent = 0;
    return true;
  }

  void flush(Connection& c) {
    const int fd = c.fd;
    if (!send_some(c)) {
      close_connection(fd);
      return;
    }
    if (!c.out.empty()) {
      set_events(c, c.phase == Connection::Phase::kReading ? EPOLLIN | EPOLLOUT : EPOLLOUT);
      return;
    }
    if (c.phase == Connection::Phase::kReading) {
      set_events(c, EPOLLIN);
      return;
    }
    if (c.phase != Connection::Phase::kWriting) return;
    if (c.close_after_write) {
      // Half-close and drain, so a client still sending sees the answer.
      ::shutdown(fd, SHUT_WR);
      c.phase = Connection::Phase::kLingering;
      c.deadline = Clock::now() + kLinger;
      c.in.clear();
      c.reader.reset();
      account(c);
      set_events(c, EPOLLIN);
      return;
    }
    // Ready for the next request, which may already be buffered.
    c.phase = Connection::Phase::kReading;
    c.reader.reset();
    c.request_deadline_set = false;
    c.deadline = Clock::now() + options_.timeout;
    set_events(c, EPOLLIN);
    advance(c);
  }

  // Discards input while lingering; false once the peer has closed.
  bool drain(Connection& c) {
    char buf[kReadChunk];
    while (true) {
      auto n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
  }

  void sweep(Clock::time_point now) {
    std::vector<int> expired;
    for (auto& [fd, c] : connections_) {
      if (c->phase != Connection::Phase::kHandling && now >= c->deadline) expired.push_back(fd);
    }
    for (int fd : expired) {
      auto it = connections_.find(fd);
      if (it == connections_.end()) continue;
      Connection& c = *it->second;
      if (c.phase == Connection::Phase::kReading && c.reader.started()) {
        log::info("http.request_timeout", "a request did not arrive whole in time",
                  {{"url", url()}, {"timeout_ms", std::to_string(options_.timeout.count())}});
        const std::uint64_t id = c.id;
        answer_and_close(c, 408, "request timeout");
        // A client that reads nothing either gets no second chance.
        if (Connection* still = find(fd, id); still && still->phase == Connection::Phase::kWriting) still->deadline = now + kLinger;
        continue;
      }
      close_connection(fd);
    }
  }

  // Worker threads: run handlers, hand the bytes back to the loop.
  void work(Lane& lane) {
    while (true) {
      Job job;
      {
        std::unique_lock lock(jobs_mu_);
        lane.cv.wait(lock, [&] { return jobs_stop_ || !lane.jobs.empty(); });
        if (jobs_stop_) return;
        job = std::move(lane.jobs.front());
        lane.jobs.pop_front();
      }
      Response r = dispatch(job);
      Done d{job.fd, job.id, serialize_response(r, job.keep_alive), job.keep_alive};
      {
        std::lock_guard lock(jobs_mu_);
        done_.push_back(std::move(d));
      }
      wake();
    }
  }

  void match(Job& job) const {
    const Request& r = job.request;
    for (const auto& rt : routes_) {
      bool path_ok = rt.prefix ? r.path.rfind(rt.path, 0) == 0 : r.path == rt.path;
      if (!path_ok) continue;
      job.status = 405;
      if (rt.method == r.method) {
        job.route = &rt;
        return;
      }
    }
  }

  Response dispatch(const Job& job) {
    const Request& r = job.request;
    if (!job.route) return job.status == 405 ? Response{405, "method not allowed\n"} : Response{404, "not found\n"};
    try {
      return job.route->handler(r);
    } catch (const std::exception& e) {
      log::error("http.handler_failed", "request failed", {{"path", r.path}, {"error", e.what()}});
    } catch (...) {
      log::error("http.handler_failed", "request failed", {{"path", r.path}, {"error", "unknown exception"}});
    }
    return {500, "internal error\n"};
  }

  ServerOptions options_;
  ReaderLimits limits_;
  std::vector<Route> routes_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread loop_;
  std::vector<std::thread> workers_;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;  // loop thread only
  std::uint64_t next_id_ = 0;
  std::size_t buffered_ = 0;  // request bytes held by all connections
  std::uint64_t refused_ = 0;

  std::mutex jobs_mu_;
  bool jobs_stop_ = false;
  Lane shared_;
  Lane health_;  // one thread of its own: answered while handlers block
  std::deque<Done> done_;
};

}  // namespace

std::string Response::header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers) {
    std::string l = k;
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (l == lower_name) return v;
  }
  return {};
}

std::unique_ptr<Server> make_server(const ServerOptions& options) { return std::make_unique<EpollServer>(options); }

}  // namespace flurry::http
