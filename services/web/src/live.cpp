#include "live.hpp"

#include <deque>
#include <map>

#include "api_codec.hpp"

namespace flurry::web {
namespace {

constexpr std::size_t kManyJobs = 2000;
constexpr int kManyJobsEvery = 5;              // ticks between reads of a big eval's jobs
constexpr std::size_t kLogChunk = 256 * 1024;  // log bytes one event carries at most

std::string event(const std::string& name, const std::string& data) { return "event: " + name + "\ndata: " + data + "\n\n"; }

bool ended(state::EvalState s) {
  return s == state::EvalState::kSucceeded || s == state::EvalState::kFailed || s == state::EvalState::kCancelled;
}

// What of a job a page shows changes with these.
std::string job_mark(const state::JobRecord& j) {
  return std::string(msg::to_string(j.state)) + "/" + std::to_string(j.started_ms) + "/" + std::to_string(j.finished_ms) + "/" +
         std::to_string(j.attempts);
}

class EvalEvents final : public http::Stream {
 public:
  EvalEvents(state::StateStore& state, const state::EvalRecord& eval) : state_(state), id_(eval.id) {
    if (auto jobs = state_.list_jobs(id_)) {
      for (const auto& j : *jobs) marks_[j.id] = job_mark(j);
    }
  }

  std::optional<std::string> next() override {
    if (done_ && pending_.empty()) return std::nullopt;
    if (pending_.empty()) poll();
    // At most kPiece a call: the server closes a connection handed more
    // than it can queue; the rest goes on the next calls.
    std::string out;
    while (!pending_.empty() && (out.empty() || out.size() + pending_.front().size() <= kPiece)) {
      out += pending_.front();
      pending_.pop_front();
    }
    return out;
  }

 private:
  static constexpr std::size_t kPiece = 256 * 1024;

  // Queues what changed since the last poll.
  void poll() {
    auto e = state_.get_eval(id_);
    if (!e || !e->has_value()) return;  // the store will answer again
    const auto shown = encode_eval(**e);
    if (shown != last_eval_) {
      pending_.push_back(event("eval", shown));
      last_eval_ = shown;
    }
    const bool over = ended((**e).state);
    const bool due = (**e).jobs_total <= static_cast<int>(kManyJobs) || ++ticks_ % kManyJobsEvery == 0;
    if (!due && !over) return;
    auto jobs = state_.list_jobs(id_);
    if (!jobs) return;
    for (const auto& j : *jobs) {
      auto mark = job_mark(j);
      auto& seen = marks_[j.id];
      if (seen == mark) continue;
      seen = std::move(mark);
      pending_.push_back(event("job", encode_job(j)));
    }
    if (over) {
      pending_.push_back(event("end", "{}"));
      done_ = true;
    }
  }

  state::StateStore& state_;
  std::string id_;
  std::string last_eval_;
  std::map<std::string, std::string> marks_;
  std::deque<std::string> pending_;
  int ticks_ = 0;
  bool done_ = false;
};

class LogEvents final : public http::Stream {
 public:
  LogEvents(state::StateStore& state, const state::JobRecord& job, std::size_t offset)
      : state_(state), id_(job.id), offset_(offset), state_seen_(job.state) {}

  std::optional<std::string> next() override {
    if (done_) return std::nullopt;
    auto job = state_.get_job(id_);
    if (!job || !job->has_value()) return std::string();
    // Read after the state: a terminal state read first means every byte
    // the build wrote is in the store by the read below.
    const auto st = (**job).state;
    auto slice = state_.read_log(id_, offset_, kLogChunk);
    if (!slice) return std::string();
    std::string out;
    if (slice->size < offset_) {
      out += event("reset", "{}");
      offset_ = 0;
      return out;
    }
    if (!slice->bytes.empty()) {
      out += event("log", encode_log_chunk(offset_, slice->bytes));
      offset_ += slice->bytes.size();
    }
    if (st != state_seen_) {
      out += event("state", encode_job_state(st));
      state_seen_ = st;
    }
    if (msg::is_terminal(st) && offset_ >= slice->size) {
      out += event("end", "{}");
      done_ = true;
    }
    return out;
  }

 private:
  state::StateStore& state_;
  std::string id_;
  std::size_t offset_;
  msg::JobState state_seen_;
  bool done_ = false;
};

http::Response stream_answer(std::shared_ptr<http::Stream> s) {
  http::Response r;
  r.content_type = "text/event-stream";
  r.headers["Cache-Control"] = "no-cache";
  r.body = "retry: 3000\n\n";  // how long EventSource waits before reconnecting
  r.stream = std::move(s);
  return r;
}

}  // namespace

http::Response eval_events(state::StateStore& state, const state::EvalRecord& eval) {
  return stream_answer(std::make_shared<EvalEvents>(state, eval));
}

http::Response log_events(state::StateStore& state, const state::JobRecord& job, std::size_t offset) {
  return stream_answer(std::make_shared<LogEvents>(state, job, offset));
}

}  // namespace flurry::web
