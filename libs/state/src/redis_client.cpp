#include "redis_client.hpp"

#include <hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "flurry/core/log.hpp"

namespace flurry::state::redis {
namespace {

using std::chrono::milliseconds;

// Idle connections kept for reuse; more are opened when more threads call
// at once, and closed again when they come back to a full pool.
constexpr std::size_t kMaxIdle = 32;

Reply copy_reply(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::kString; break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::kStatus; break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::kError; break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::kInteger; break;
    case REDIS_REPLY_ARRAY: out.type = Reply::Type::kArray; break;
    default: out.type = Reply::Type::kNil; break;
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) {
    out.str.assign(r->str, r->len);
  }
  if (r->type == REDIS_REPLY_INTEGER) out.integer = r->integer;
  if (r->type == REDIS_REPLY_ARRAY) {
    out.elements.reserve(r->elements);
    for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
  }
  return out;
}

milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
  return std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
}

// Socket timeouts for what is left of the call; never zero, which would
// mean "no timeout" to the kernel.
timeval timeval_of(milliseconds left) {
  auto ms = std::max<long long>(1, left.count());
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

// hiredis writes with write(2): on a connection the server has reset, that
// raises SIGPIPE, which kills a process that did not ignore it. Blocks the
// signal for this thread while a command is on the wire and discards one
// that this thread caused.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    // Nothing to do where SIGPIPE is ignored (every Flurry service): one
    // system call instead of four per command.
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
      active_ = false;
      return;
    }
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (!active_) return;
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool active_ = true;
};

// An idle connection is usable if the server has not closed it: with no
// request outstanding, anything readable is EOF, a reset or garbage.
bool still_open(redisContext* c) {
  if (c->err) return false;
  pollfd p{c->fd, POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

// Why a connection failed, in words for a log line.
std::string failure_text(const redisContext* c) {
  if (c->err == REDIS_ERR_IO && std::string_view(c->errstr) == std::strerror(EAGAIN)) return "no reply within the timeout";
  if (c->err == REDIS_ERR_EOF) return "the server closed the connection";
  return c->errstr[0] ? c->errstr : "connection lost";
}

Result<Reply> send(redisContext* c, std::chrono::steady_clock::time_point deadline,
                   const std::vector<std::string_view>& argv) {
  // The socket's timeouts are the client's (set once, at connect): each
  // command waits no longer than that.
  if (remaining(deadline).count() <= 0) return fail(Error::transient("redis: timed out before sending"));
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (auto a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  void* raw = nullptr;
  {
    SigpipeGuard guard;
    raw = redisCommandArgv(c, static_cast<int>(ptrs.size()), ptrs.data(), lens.data());
  }
  if (!raw) return fail(Error::transient("redis: " + failure_text(c)));
  Reply r = copy_reply(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return r;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

Error error_from_reply(std::string_view what, std::string_view text) {
  if (starts_with(text, "NOTFOUND ")) return Error::not_found(std::string(text.substr(9)));
  if (starts_with(text, "ENDED ")) return Error::rejected(std::string(text.substr(6)));
  if (starts_with(text, "BADARG ")) return Error::poison(std::string(text.substr(7)));
  return Error::transient("redis: " + std::string(what) + ": " + std::string(text));
}

// One connection taken from the pool for one call; goes back to the pool
// unless a failure left it in an unknown state.
class Client::Lease {
 public:
  Lease(Client& client, redisContext* c) : client_(client), c_(c) {}
  Lease(Lease&& o) noexcept : client_(o.client_), c_(o.c_), broken_(o.broken_) { o.c_ = nullptr; }
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (!c_) return;
    if (broken_ || c_->err) redisFree(c_);
    else client_.give_back(c_);
  }
  redisContext* get() const { return c_; }
  void mark_broken() { broken_ = true; }

 private:
  Client& client_;
  redisContext* c_;
  bool broken_ = false;
};

Client::Client(RedisOptions options) : options_(std::move(options)) {}

Client::~Client() {
  for (auto* c : idle_) redisFree(c);
}

redisContext* Client::take_idle() {
  while (true) {
    redisContext* c = nullptr;
    {
      std::lock_guard lock(mu_);
      if (idle_.empty()) return nullptr;
      c = idle_.back();
      idle_.pop_back();
    }
    if (still_open(c)) return c;
    redisFree(c);
  }
}

void Client::give_back(redisContext* c) {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) {
      idle_.push_back(c);
      return;
    }
  }
  redisFree(c);
}

Result<redisContext*> Client::connect(Clock::time_point deadline) {
  auto left = remaining(deadline);
  if (left.count() <= 0) return fail(Error::transient("redis: timed out before connecting"));
  std::string where = options_.host + ":" + std::to_string(options_.port);
  redisContext* c = redisConnectWithTimeout(options_.host.c_str(), options_.port, timeval_of(left));
  if (!c || c->err) {
    std::string why = c ? c->errstr : "cannot allocate a connection";
    if (c) redisFree(c);
    std::string message = "redis: cannot connect to " + where + ": " + why;
    note_down(message);
    return fail(Error::transient(message));
  }
  redisEnableKeepAlive(c);
  if (redisSetTimeout(c, timeval_of(options_.timeout)) != REDIS_OK) {
    redisFree(c);
    return fail(Error::transient("redis: cannot set the socket timeout for " + where));
  }
  if (!options_.password.empty()) {
    auto r = send(c, deadline, {"AUTH", options_.password});
    if (!r || r->type == Reply::Type::kError) {
      std::string why = r ? r->str : r.error().message;
      redisFree(c);
      return fail(Error::transient("redis: authentication to " + where + " failed: " + why));
    }
  }
  return c;
}

Result<Client::Lease> Client::lease(Clock::time_point deadline) {
  if (redisContext* c = take_idle()) return Lease(*this, c);
  auto fresh = connect(deadline);
  if (!fresh) return fail(fresh.error());
  return Lease(*this, *fresh);
}

void Client::note_down(const std::string& why) {
  if (!reported_down_.exchange(true)) {
    log::warn("state.redis_unavailable", "lost Redis; calls fail as transient until it answers", {{"error", why}});
  }
}

void Client::note_up() {
  if (reported_down_.load(std::memory_order_relaxed) && reported_down_.exchange(false)) {
    log::info("state.redis_available", "Redis answers again");
  }
}

Result<Reply> Client::round_trip(Lease& lease, Clock::time_point deadline, const std::vector<std::string_view>& argv) {
  auto r = send(lease.get(), deadline, argv);
  if (!r) {
    lease.mark_broken();
    note_down(r.error().message);
    return r;
  }
  // The server is up but cannot serve yet: try again later.
  if (r->type == Reply::Type::kError && (starts_with(r->str, "LOADING") || starts_with(r->str, "BUSY") ||
                                         starts_with(r->str, "MASTERDOWN") || starts_with(r->str, "TRYAGAIN"))) {
    return fail(Error::transient("redis: " + r->str));
  }
  note_up();
  return r;
}

Result<Reply> Client::command(const std::vector<std::string>& args) {
  auto deadline = Clock::now() + options_.timeout;
  auto leased = lease(deadline);
  if (!leased) return fail(leased.error());
  Lease& lease = *leased;
  auto r = round_trip(lease, deadline, std::vector<std::string_view>(args.begin(), args.end()));
  if (!r) return r;
  if (r->type == Reply::Type::kError) return fail(error_from_reply(args.empty() ? "" : args[0], r->str));
  return r;
}

Result<std::vector<Reply>> Client::pipeline(const std::vector<std::vector<std::string>>& commands) {
  auto deadline = Clock::now() + options_.timeout;
  auto leased = lease(deadline);
  if (!leased) return fail(leased.error());
  Lease& lease = *leased;
  redisContext* c = lease.get();
  for (const auto& args : commands) {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(ptrs.size()), ptrs.data(), lens.data()) != REDIS_OK) {
      lease.mark_broken();
      return fail(Error::transient("redis: cannot queue a command"));
    }
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  {
    SigpipeGuard guard;
    for (std::size_t i = 0; i < commands.size(); ++i) {
      auto left = remaining(deadline);
      void* raw = nullptr;
      if (left.count() <= 0 || redisGetReply(c, &raw) != REDIS_OK || !raw) {
        lease.mark_broken();
        std::string why = left.count() <= 0 ? "no reply within the timeout" : failure_text(c);
        note_down(why);
        return fail(Error::transient("redis: " + why));
      }
      replies.push_back(copy_reply(static_cast<redisReply*>(raw)));
      freeReplyObject(raw);
    }
  }
  note_up();
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].type == Reply::Type::kError) return fail(error_from_reply(commands[i][0], replies[i].str));
  }
  return replies;
}

std::string Client::script_sha(const Script& script) {
  std::lock_guard lock(mu_);
  auto it = shas_.find(&script.body);
  return it == shas_.end() ? std::string() : it->second;
}

void Client::remember_sha(const Script& script, std::string sha) {
  std::lock_guard lock(mu_);
  shas_[&script.body] = std::move(sha);
}

Result<Reply> Client::eval(const Script& script, const std::vector<std::string>& keys, const std::vector<std::string>& args) {
  auto deadline = Clock::now() + options_.timeout;
  auto leased = lease(deadline);
  if (!leased) return fail(leased.error());
  Lease& lease = *leased;

  std::string sha = script_sha(script);
  if (sha.empty()) {
    auto loaded = round_trip(lease, deadline, {"SCRIPT", "LOAD", script.body});
    if (!loaded) return loaded;
    if (!loaded->is_string()) return fail(error_from_reply(script.name, "SCRIPT LOAD: " + loaded->str));
    sha = loaded->str;
    remember_sha(script, sha);
  }
  std::string numkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(sha);
  argv.push_back(numkeys);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = round_trip(lease, deadline, argv);
  if (r && r->type == Reply::Type::kError && starts_with(r->str, "NOSCRIPT")) {
    // The server lost its script cache (restart, SCRIPT FLUSH): EVAL sends
    // the body and caches it again under the same sha.
    argv[0] = "EVAL";
    argv[1] = script.body;
    r = round_trip(lease, deadline, argv);
  }
  if (!r) return r;
  if (r->type == Reply::Type::kError) return fail(error_from_reply(script.name, r->str));
  return r;
}

}  // namespace flurry::state::redis
