#include "stream_pump.hpp"

#include <algorithm>

#include "flurry/core/log.hpp"
#include "request_reader.hpp"

namespace flurry::http {
namespace {

// A shorter interval would make the pump thread spin.
constexpr std::chrono::milliseconds kMinInterval{10};
constexpr char kKeepAliveComment[] = ": keep-alive\n\n";

}  // namespace

void StreamPump::start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void StreamPump::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StreamPump::add(std::unique_ptr<StreamTask> task) {
  {
    std::lock_guard lock(mu_);
    adds_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void StreamPump::cancel(std::uint64_t id) {
  {
    std::lock_guard lock(mu_);
    cancels_.push_back(id);
  }
  cv_.notify_one();
}

void StreamPump::drop(std::unique_ptr<StreamTask> task) {
  {
    std::lock_guard lock(mu_);
    drops_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void StreamPump::run() {
  Active active;
  std::unique_lock lock(mu_);
  while (!stop_) {
    auto ready = [&] { return stop_ || !adds_.empty() || !cancels_.empty() || !drops_.empty(); };
    if (active.empty()) {
      cv_.wait(lock, ready);
    } else {
      auto due = std::min_element(active.begin(), active.end(), [](const auto& a, const auto& b) { return a.second->due < b.second->due; });
      cv_.wait_until(lock, due->second->due, ready);
    }
    if (stop_) break;
    lock.unlock();
    take_inbox(active);
    auto out = pump_due(active, Clock::now());
    if (!out.empty()) deliver_(std::move(out));
    lock.lock();
  }
  // Streams are released here, on this thread, as everywhere else.
  std::vector<std::unique_ptr<StreamTask>> leftover;
  leftover.swap(adds_);
  for (auto& t : drops_) leftover.push_back(std::move(t));
  cancels_.clear();
  drops_.clear();
  lock.unlock();
  leftover.clear();
  active.clear();
}

void StreamPump::take_inbox(Active& active) {
  std::vector<std::unique_ptr<StreamTask>> adds;
  std::vector<std::uint64_t> cancels;
  std::vector<std::unique_ptr<StreamTask>> drops;  // released on return
  {
    std::lock_guard lock(mu_);
    adds.swap(adds_);
    cancels.swap(cancels_);
    drops.swap(drops_);
  }
  const auto now = Clock::now();
  for (auto& t : adds) {
    t->interval = std::max(t->interval, kMinInterval);
    t->due = now;
    t->last_sent = now;
    active.emplace(t->id, std::move(t));
  }
  for (auto id : cancels) active.erase(id);  // runs the Stream's destructor
}

std::vector<StreamPump::Output> StreamPump::pump_due(Active& active, Clock::time_point now) {
  std::vector<Output> out;
  for (auto it = active.begin(); it != active.end();) {
    StreamTask& t = *it->second;
    if (now < t.due) {
      ++it;
      continue;
    }
    t.due = now + t.interval;
    if (pump_one(t, now, out)) {
      ++it;
    } else {
      it = active.erase(it);
    }
  }
  return out;
}

// Asks one due stream for its bytes; false once it has ended.
bool StreamPump::pump_one(StreamTask& t, Clock::time_point now, std::vector<Output>& out) {
  // A client that is behind has bytes waiting anyway (no keep-alive
  // needed); asking for more would only grow what the server holds.
  if (t.paused->load()) return true;
  std::optional<std::string> piece;
  try {
    piece = t.stream->next();
  } catch (const std::exception& e) {
    log::error("http.stream_failed", "a streaming response failed", {{"path", t.path}, {"error", e.what()}});
    out.push_back({t.fd, t.id, {}, Output::Kind::kAbort});
    return false;
  } catch (...) {
    log::error("http.stream_failed", "a streaming response failed", {{"path", t.path}, {"error", "unknown exception"}});
    out.push_back({t.fd, t.id, {}, Output::Kind::kAbort});
    return false;
  }
  if (!piece) {
    out.push_back({t.fd, t.id, t.chunked ? "0\r\n\r\n" : "", Output::Kind::kEnd});
    return false;
  }
  if (piece->empty() && t.keepalive && now - t.last_sent >= keepalive_) *piece = kKeepAliveComment;
  if (!piece->empty()) {
    out.push_back({t.fd, t.id, frame_piece(*piece, t.chunked), Output::Kind::kData});
    t.last_sent = now;
  }
  return true;
}

}  // namespace flurry::http
