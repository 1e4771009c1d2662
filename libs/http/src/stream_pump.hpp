#pragma once
// The server's stream thread: it calls each due streaming response's
// Stream::next() and hands the framed bytes to the event loop. Streams wait
// here rather than on the handler workers, so a page left open all day
// holds a socket and an entry, not a thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "flurry/http/http.hpp"

namespace flurry::http {

// One streaming response between its handler and its end. Holds one slot
// of ServerOptions::max_streams for as long as it exists, whichever thread
// drops it.
struct StreamTask {
  using Clock = std::chrono::steady_clock;
  StreamTask(std::shared_ptr<Stream> s, std::atomic<std::size_t>& slots) : stream(std::move(s)), slots_(slots) {}
  StreamTask(const StreamTask&) = delete;
  StreamTask& operator=(const StreamTask&) = delete;
  ~StreamTask() {
    stream.reset();  // the handler's Stream goes before its slot is free
    --slots_;
  }

  std::shared_ptr<Stream> stream;
  int fd = -1;           // the connection it answers, as the event loop
  std::uint64_t id = 0;  // knows it (ids are never reused)
  std::string path;      // for log lines
  std::chrono::milliseconds interval{1000};
  bool chunked = true;
  bool keepalive = false;  // send SSE comments when idle
  // Set by the event loop while the client is behind: next() then waits.
  std::shared_ptr<std::atomic<bool>> paused = std::make_shared<std::atomic<bool>>(false);
  Clock::time_point due;        // pump thread only
  Clock::time_point last_sent;  // pump thread only

 private:
  std::atomic<std::size_t>& slots_;
};

class StreamPump {
 public:
  struct Output {
    enum class Kind { kData, kEnd, kAbort };  // kEnd: bytes end the body
    int fd;
    std::uint64_t id;
    std::string bytes;
    Kind kind;
  };
  // Receives each pass's output, on the pump thread.
  using Deliver = std::function<void(std::vector<Output>)>;

  StreamPump(std::chrono::milliseconds keepalive, Deliver deliver)
      : keepalive_(keepalive), deliver_(std::move(deliver)) {}
  ~StreamPump() { stop(); }

  void start();
  // Returns once the thread has ended; every Stream is released by then.
  void stop();
  // Its first next() is called at once.
  void add(std::unique_ptr<StreamTask> task);
  // Releases the stream of connection `id` (unknown ids are ignored: the
  // stream may have ended on its own meanwhile).
  void cancel(std::uint64_t id);
  // Releases a stream that never started (its client left first).
  void drop(std::unique_ptr<StreamTask> task);

 private:
  using Clock = StreamTask::Clock;
  using Active = std::unordered_map<std::uint64_t, std::unique_ptr<StreamTask>>;  // by connection id

  void run();
  void take_inbox(Active& active);
  std::vector<Output> pump_due(Active& active, Clock::time_point now);
  bool pump_one(StreamTask& t, Clock::time_point now, std::vector<Output>& out);

  const std::chrono::milliseconds keepalive_;
  const Deliver deliver_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<std::unique_ptr<StreamTask>> adds_;  // under mu_
  std::vector<std::uint64_t> cancels_;             // under mu_
  std::vector<std::unique_ptr<StreamTask>> drops_;  // under mu_
};

}  // namespace flurry::http
