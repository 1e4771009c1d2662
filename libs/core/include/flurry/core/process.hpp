#pragma once
// The one way Flurry runs subprocesses: an argv vector (never a shell
// string), its own process group (so a timeout kills the whole tree),
// bounded capture of stdout/stderr, and optional streaming of output.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flurry/core/error.hpp"

namespace flurry {

struct ProcessSpec {
  std::vector<std::string> argv;          // argv[0] is looked up on PATH
  std::map<std::string, std::string> env;  // set (or override) these variables
  bool clear_env = false;                  // start from an empty environment
  std::optional<std::string> cwd;
  std::string stdin_data;                  // written to the child's stdin, then closed
  std::chrono::milliseconds timeout{0};          // total wall time; 0 = none
  std::chrono::milliseconds silence_timeout{0};  // no output for this long; 0 = none
  std::size_t max_capture = 16 * 1024 * 1024;    // per stream; beyond it the head is dropped
  // Called with each chunk as it arrives (from the runner's thread).
  std::function<void(std::string_view)> on_stdout;
  std::function<void(std::string_view)> on_stderr;
  // When set and it becomes true, the process group is killed.
  const std::atomic<bool>* cancel = nullptr;
  // Called from the runner's thread about every 100 ms while the process
  // runs (it may set *cancel): periodic work beside the child without a
  // thread of its own.
  std::function<void()> on_tick;
  // Memory ceiling: the child's resident set size is sampled every 100 ms
  // and past this many bytes its process group is killed. 0 = none.
  std::size_t max_rss_bytes = 0;
};

struct ProcessResult {
  int exit_code = -1;       // valid when term_signal == 0
  int term_signal = 0;      // the signal that ended the child, if any
  bool timed_out = false;   // ended by `timeout`
  bool silent_too_long = false;  // ended by `silence_timeout`
  bool cancelled = false;   // ended by `cancel`
  bool memory_exceeded = false;  // ended by `max_rss_bytes`
  std::size_t peak_rss_bytes = 0;  // largest sample (only sampled with max_rss_bytes)
  bool truncated = false;   // some output was dropped from the head
  std::string out;
  std::string err;

  bool ok() const {
    return term_signal == 0 && exit_code == 0 && !timed_out && !silent_too_long && !cancelled && !memory_exceeded;
  }
  // "exit code 3", "killed by signal 9", "timed out", ...
  std::string describe() const;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs to completion. An error value means the process could not be
  // started (missing binary, fork failure); a non-zero exit is a result.
  virtual Result<ProcessResult> run(const ProcessSpec& spec) = 0;
};

// Runs real processes with fork/exec, each in its own process group (a
// timeout kills the whole group). A child is sent SIGTERM if this process
// dies while it runs.
class PosixProcessRunner final : public ProcessRunner {
 public:
  Result<ProcessResult> run(const ProcessSpec& spec) override;
};

// A process runner shared by a whole service process.
ProcessRunner& default_process_runner();

}  // namespace flurry
