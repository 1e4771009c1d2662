#pragma once
// A thread-safe hiredis client for the state adapter: a pool of
// connections, one deadline per call, owned replies, Lua scripts run by
// sha. Private to flurry_state_redis; <hiredis.h> stays in the .cpp.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/state/redis_store.hpp"

struct redisContext;

namespace flurry::state::redis {

// An owned copy of one server reply.
struct Reply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // string, status or error text
  long long integer = 0;
  std::vector<Reply> elements;

  bool is_nil() const { return type == Type::kNil; }
  bool is_string() const { return type == Type::kString || type == Type::kStatus; }
  bool is_integer() const { return type == Type::kInteger; }
  bool is_array() const { return type == Type::kArray; }
};

// A Lua script; the client remembers the sha the server knows it by.
struct Script {
  std::string_view name;
  const std::string& body;
};

class Client {
 public:
  explicit Client(RedisOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One command. An error reply becomes an Error: the script codes
  // NOTFOUND, ENDED and BADARG map to kNotFound, kRejected and kPoison;
  // everything else (lost connection, timeout, LOADING after a restart,
  // BUSY, OOM) is transient. Never blocks longer than options.timeout.
  Result<Reply> command(const std::vector<std::string>& args);
  // Commands written together on one connection; replies in order. Any
  // error reply fails the whole batch. One deadline for the batch.
  Result<std::vector<Reply>> pipeline(const std::vector<std::vector<std::string>>& commands);
  // EVALSHA of `script`; loads it on first use and falls back to EVAL when
  // the server forgot it (NOSCRIPT, e.g. after a restart).
  Result<Reply> eval(const Script& script, const std::vector<std::string>& keys, const std::vector<std::string>& args);

 private:
  using Clock = std::chrono::steady_clock;
  class Lease;

  // A pooled connection that the server has not closed, or a new one.
  Result<Lease> lease(Clock::time_point deadline);
  Result<redisContext*> connect(Clock::time_point deadline);
  redisContext* take_idle();
  void give_back(redisContext* c);
  // Sends argv on the leased connection and reads the reply; error replies
  // come back as replies.
  Result<Reply> round_trip(Lease& lease, Clock::time_point deadline, const std::vector<std::string_view>& argv);
  std::string script_sha(const Script& script);
  void remember_sha(const Script& script, std::string sha);
  // Logs losing and regaining Redis once each, not on every failed call.
  void note_down(const std::string& why);
  void note_up();

  RedisOptions options_;
  std::mutex mu_;
  std::vector<redisContext*> idle_;
  std::map<const std::string*, std::string> shas_;
  std::atomic<bool> reported_down_{false};
};

// The error an error reply stands for (see Client::command).
Error error_from_reply(std::string_view what, std::string_view text);

}  // namespace flurry::state::redis
