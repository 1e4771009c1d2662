// The HTTP/1.1 server every service shares: one epoll thread owns the
// sockets and reads requests with deadlines; a small pool runs handlers.
//
// It is our own rather than cpprest's listener because that one enforces no
// read timeout: a client that sends half a request holds its connection,
// and enough of them hold the service. Here a request must arrive whole
// within `timeout` of its first byte (else 408 and close), an idle
// keep-alive connection is closed after `timeout`, and the number of
// connections is bounded.
//
// Streaming responses (server-sent events) leave the workers once their
// handler returns: the stream thread (stream_pump.hpp) asks each Stream
// for bytes and hands them here; this loop writes them without blocking.
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
#include "stream_pump.hpp"

namespace flurry::http {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 64 * 1024;
// After an answer that closes the connection, unread request bytes are
// drained this long so the client sees the answer rather than a reset.
constexpr auto kLinger = std::chrono::seconds(2);
// A stream is not asked for more while this much waits for its client...
constexpr std::size_t kStreamPauseAt = 64 * 1024;
// ...and a connection whose stream leaves more than this unsent is closed,
// so a client that does not read cannot make the server hold much.
constexpr std::size_t kMaxStreamQueued = 1024 * 1024;

struct Route {
  std::string method;
  std::string path;
  bool prefix;
  bool own_lane;  // served by the health thread, not the shared workers
  Handler handler;
};

struct Connection {
  enum class Phase { kReading, kHandling, kWriting, kLingering, kStreaming };
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
  bool stream_chunked = false;
  std::shared_ptr<std::atomic<bool>> stream_paused;  // shared with the stream's task
  explicit Connection(ReaderLimits l) : reader(l) {}
};

struct Job {
  int fd;
  std::uint64_t id;
  Request request;
  bool keep_alive;
  const Route* route;  // null: no route (404 or 405 in `status`)
  int status;
  bool http10;
};

struct Done {
  int fd;
  std::uint64_t id;
  std::string bytes;  // the whole answer, or a stream's head
  bool keep_alive;
  std::unique_ptr<StreamTask> stream;
};

bool is_event_stream(const Response& r) {
  std::string type = r.header("content-type");
  if (type.empty()) type = r.content_type;
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return type.rfind("text/event-stream", 0) == 0;
}

class EpollServer final : public Server {
 public:
  explicit EpollServer(ServerOptions o)
      : options_(std::move(o)),
        pump_(options_.stream_keepalive, [this](std::vector<StreamPump::Output> out) { take_stream_output(std::move(out)); }) {
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
    pump_.start();
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
    pump_.stop();  // every started Stream is released
    end_streams_for_stop();
    for (auto& [fd, c] : connections_) ::close(fd);
    connections_.clear();
    close_all_fds();
    jobs_stop_ = false;
    shared_.jobs.clear();
    health_.jobs.clear();
    done_.clear();  // releases streams no connection took up
    stream_out_.clear();
  }

  std::string url() const override {
    bool v6 = options_.address.find(':') != std::string::npos;
    return "http://" + (v6 ? "[" + options_.address + "]" : options_.address) + ":" + std::to_string(options_.port);
  }

  std::size_t streams() const override { return streams_.load(); }

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
          apply_stream_output();
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
    if (auto it = connections_.find(fd); it != connections_.end()) {
      buffered_ -= it->second->accounted;
      if (it->second->phase == Connection::Phase::kStreaming) pump_.cancel(it->second->id);
    }
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
    if (c->phase == Connection::Phase::kStreaming) {
      // Its input is not read; a client that hung up (or shut its sending
      // side) ends its stream.
      if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) close_connection(fd);
      return;
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
    Job job{c.fd, c.id, std::move(c.reader.request()), c.reader.keep_alive() && !c.peer_closed, nullptr, 404, c.reader.http10()};
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
      if (!found) {  // the client left
        if (d.stream) pump_.drop(std::move(d.stream));
        continue;
      }
      Connection& c = *found;
      if (d.stream) {
        c.out += d.bytes;
        start_stream(c, std::move(d.stream), d.keep_alive);
        continue;
      }
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
    if (c.phase == Connection::Phase::kStreaming) {
      flush_stream(c);
      return;
    }
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
      if (c->phase == Connection::Phase::kHandling) continue;
      // A stream has no idle timeout; its deadline runs only while bytes
      // wait for the client.
      if (c->phase == Connection::Phase::kStreaming && c->out.empty()) continue;
      if (now >= c->deadline) expired.push_back(fd);
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
      if (c.phase == Connection::Phase::kStreaming) {
        log::info("http.stream_stalled", "dropped a streaming client that took no bytes in time",
                  {{"url", url()}, {"timeout_ms", std::to_string(options_.timeout.count())}});
      }
      close_connection(fd);
    }
  }

  // The head (and the handler's body, if any) is in c.out; from here the
  // stream thread supplies the rest.
  void start_stream(Connection& c, std::unique_ptr<StreamTask> task, bool keep_alive) {
    if (c.peer_closed) {  // an EOF ends a stream, even one not yet begun
      pump_.drop(std::move(task));
      close_connection(c.fd);
      return;
    }
    c.phase = Connection::Phase::kStreaming;
    c.close_after_write = !keep_alive;  // for when the stream ends
    c.stream_chunked = task->chunked;
    c.stream_paused = task->paused;
    c.deadline = Clock::now() + options_.timeout;
    pump_.add(std::move(task));
    flush(c);
  }

  // Writes what it can; the stream waits while its client is behind, and a
  // client that takes nothing for `timeout` is dropped by sweep().
  void flush_stream(Connection& c) {
    const std::size_t before = c.out.size() - c.out_sent;
    if (!send_some(c)) {
      close_connection(c.fd);
      return;
    }
    const std::size_t left = c.out.size() - c.out_sent;
    if (left < before) c.deadline = Clock::now() + options_.timeout;
    c.stream_paused->store(left >= kStreamPauseAt);
    set_events(c, left > 0 ? EPOLLRDHUP | EPOLLOUT : EPOLLRDHUP);
  }

  // Called on the stream thread.
  void take_stream_output(std::vector<StreamPump::Output> out) {
    {
      std::lock_guard lock(jobs_mu_);
      for (auto& o : out) stream_out_.push_back(std::move(o));
    }
    wake();
  }

  void apply_stream_output() {
    std::deque<StreamPump::Output> outs;
    {
      std::lock_guard lock(jobs_mu_);
      outs.swap(stream_out_);
    }
    for (auto& o : outs) {
      Connection* c = find(o.fd, o.id);
      if (!c || c->phase != Connection::Phase::kStreaming) continue;  // the client left
      if (o.kind == StreamPump::Output::Kind::kAbort) {
        close_connection(o.fd);  // no final chunk: the client sees the body cut off
        continue;
      }
      // Sent bytes are dropped now: a busy stream's buffer may never empty.
      c->out.erase(0, c->out_sent);
      c->out_sent = 0;
      if (c->out.empty()) c->deadline = Clock::now() + options_.timeout;
      c->out += o.bytes;
      if (o.kind == StreamPump::Output::Kind::kEnd) {
        end_stream(*c);
        continue;
      }
      flush(*c);
      if ((c = find(o.fd, o.id)) && c->out.size() - c->out_sent > kMaxStreamQueued) {
        log::warn("http.stream_overflow", "closed a streaming client that is too far behind",
                  {{"url", url()}, {"unsent_bytes", std::to_string(c->out.size() - c->out_sent)}});
        close_connection(o.fd);
      }
    }
  }

  // The stream has released its Stream and its end is in c.out: the
  // connection finishes like any answer (then keep-alive or close).
  void end_stream(Connection& c) {
    c.phase = Connection::Phase::kWriting;
    c.stream_paused.reset();
    c.close_after_write = c.close_after_write || c.peer_closed;
    c.deadline = Clock::now() + options_.timeout;
    flush(c);
  }

  // On stop, with the loop and the stream thread ended: what streams
  // produced and then each stream's end are written as far as the sockets
  // take them without waiting, so clients see streams end rather than cut.
  void end_streams_for_stop() {
    std::vector<Connection*> streaming;
    for (auto& [fd, c] : connections_) {
      if (c->phase == Connection::Phase::kStreaming) streaming.push_back(c.get());
    }
    std::deque<StreamPump::Output> outs;
    {
      std::lock_guard lock(jobs_mu_);
      outs.swap(stream_out_);
    }
    for (auto& o : outs) {
      Connection* c = find(o.fd, o.id);
      if (!c || c->phase != Connection::Phase::kStreaming) continue;
      c->out += o.bytes;
      // Ended (its end is now in `out`) or cut off: no final chunk of ours.
      if (o.kind != StreamPump::Output::Kind::kData) c->phase = Connection::Phase::kWriting;
    }
    for (Connection* c : streaming) {
      if (c->phase == Connection::Phase::kStreaming && c->stream_chunked) c->out += "0\r\n\r\n";
      if (!send_some(*c)) continue;  // the client is gone
      ::shutdown(c->fd, SHUT_WR);
      // Unread input would turn close() into a reset, which can discard
      // the end at the client.
      drain(*c);
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
      Done d = answer(job, dispatch(job));
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

  // A handled job's bytes: a whole answer, or a stream's head and its
  // task (503 instead when max_streams are open).
  Done answer(const Job& job, Response r) {
    Done d{job.fd, job.id, {}, job.keep_alive, nullptr};
    if (r.stream && !take_stream_slot()) {
      if (auto n = ++streams_refused_; (n & (n - 1)) == 0) {
        log::warn("http.streams_full", "refused a streaming response: too many open",
                  {{"url", url()}, {"path", job.request.path}, {"max_streams", std::to_string(options_.max_streams)},
                   {"refused_total", std::to_string(n)}});
      }
      r = Response{503, "server busy: too many open streams, retry later\n"};
    }
    if (!r.stream) {
      d.bytes = serialize_response(r, job.keep_alive);
      return d;
    }
    // An HTTP/1.0 client cannot read chunks: its body ends at close.
    const bool chunked = !job.http10;
    d.keep_alive = job.keep_alive && chunked;
    d.bytes = serialize_stream_head(r, d.keep_alive, chunked) + frame_piece(r.body, chunked);
    d.stream = std::make_unique<StreamTask>(std::move(r.stream), streams_);
    d.stream->fd = job.fd;
    d.stream->id = job.id;
    d.stream->path = job.request.path;
    d.stream->interval = r.stream_interval;
    d.stream->chunked = chunked;
    d.stream->keepalive = is_event_stream(r);
    return d;
  }

  // Counts the stream in; the StreamTask holding it counts it out.
  bool take_stream_slot() {
    auto n = streams_.load();
    do {
      if (n >= options_.max_streams) return false;
    } while (!streams_.compare_exchange_weak(n, n + 1));
    return true;
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
  std::deque<StreamPump::Output> stream_out_;  // under jobs_mu_

  std::atomic<std::size_t> streams_{0};  // open StreamTasks (slots taken)
  std::atomic<std::uint64_t> streams_refused_{0};
  StreamPump pump_;  // last: its thread calls back into the members above
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
