#include "flurry/core/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace flurry {
namespace {

using Clock = std::chrono::steady_clock;

// Keeps the last `cap` bytes. The head is dropped only once the buffer
// holds twice the cap, so a stream of small chunks costs O(1) per byte, not
// a move of the whole buffer per chunk; trim_capped makes it exact at the end.
void append_capped(std::string& buf, std::string_view chunk, std::size_t cap, bool& truncated) {
  buf.append(chunk);
  if (buf.size() > 2 * cap) {
    buf.erase(0, buf.size() - cap);
    truncated = true;
  }
}

void trim_capped(std::string& buf, std::size_t cap, bool& truncated) {
  if (buf.size() > cap) {
    buf.erase(0, buf.size() - cap);
    truncated = true;
  }
}

std::vector<std::string> build_env(const ProcessSpec& spec) {
  std::map<std::string, std::string> vars;
  if (!spec.clear_env) {
    for (char** e = environ; e && *e; ++e) {
      std::string_view kv(*e);
      auto eq = kv.find('=');
      if (eq == std::string_view::npos) continue;
      vars.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  for (const auto& [k, v] : spec.env) vars[k] = v;
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
  return out;
}

// Resident set size of `pid` from /proc/<pid>/statm; 0 if unknown.
std::size_t resident_bytes(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/statm";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  unsigned long size = 0, resident = 0;
  if (std::sscanf(buf, "%lu %lu", &size, &resident) != 2) return 0;
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

void kill_group(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
}

}  // namespace

std::string ProcessResult::describe() const {
  if (timed_out) return "timed out";
  if (silent_too_long) return "no output for too long";
  if (cancelled) return "cancelled";
  if (memory_exceeded) return "memory ceiling exceeded";
  if (term_signal != 0) return "killed by signal " + std::to_string(term_signal);
  return "exit code " + std::to_string(exit_code);
}

Result<ProcessResult> PosixProcessRunner::run(const ProcessSpec& spec) {
  if (spec.argv.empty()) return fail(Error::poison("process: empty argv"));

  int in_pipe[2], out_pipe[2], err_pipe[2], exec_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return fail(Error::transient(std::string("pipe: ") + strerror(errno)));
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0) {
    return fail(Error::transient(std::string("pipe: ") + strerror(errno)));
  }

  std::vector<std::string> env_strings = build_env(spec);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = spec.argv;
  std::vector<char*> argv;
  for (auto& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);
  // PATH lookup happens in the parent so that the child only calls
  // async-signal-safe functions.
  std::string path_env;
  for (const auto& s : env_strings) {
    if (s.rfind("PATH=", 0) == 0) path_env = s.substr(5);
  }
  std::vector<std::string> candidates;
  if (spec.argv[0].find('/') != std::string::npos) {
    candidates.push_back(spec.argv[0]);
  } else {
    std::string_view rest = path_env.empty() ? std::string_view("/usr/local/bin:/usr/bin:/bin") : path_env;
    while (true) {
      auto colon = rest.find(':');
      std::string dir(rest.substr(0, colon));
      if (dir.empty()) dir = ".";
      candidates.push_back(dir + "/" + spec.argv[0]);
      if (colon == std::string_view::npos) break;
      rest = rest.substr(colon + 1);
    }
  }

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return fail(Error::transient(std::string("fork: ") + strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    // run() waits for the child on the thread that forked it, so the child
    // never outlives its caller: if the parent dies (say a builder is
    // SIGKILLed), the child (nix) is told to stop instead of building on,
    // unsupervised, in its own process group.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    // Restore default signal handling and an empty mask in the child.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (spec.cwd && chdir(spec.cwd->c_str()) != 0) {
      int e = errno;
      (void)!::write(exec_pipe[1], &e, sizeof e);
      _exit(127);
    }
    int last = ENOENT;
    for (auto& c : candidates) {
      execve(c.c_str(), argv.data(), envp.data());
      if (errno != ENOENT && errno != ENOTDIR) last = errno;
    }
    (void)!::write(exec_pipe[1], &last, sizeof last);
    _exit(127);
  }
  setpgid(pid, pid);  // also in the parent, to win the race with kill_group
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_pipe[1]);

  int exec_errno = 0;
  ssize_t n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    auto code = exec_errno == ENOENT ? ErrorCode::kRejected : ErrorCode::kTransient;
    return fail(Error{code, "cannot run " + spec.argv[0] + ": " + strerror(exec_errno)});
  }

  ProcessResult result;
  int stdin_fd = in_pipe[1];
  std::size_t stdin_off = 0;
  if (spec.stdin_data.empty()) {
    close(stdin_fd);
    stdin_fd = -1;
  } else {
    fcntl(stdin_fd, F_SETFL, O_NONBLOCK);
  }
  int fds[2] = {out_pipe[0], err_pipe[0]};
  auto start = Clock::now();
  auto last_output = start;
  auto last_rss_sample = start;
  char buf[65536];
  bool killed = false;

  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd pfds[3];
    int nfds = 0;
    int map[3];
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        pfds[nfds] = {fds[i], POLLIN, 0};
        map[nfds++] = i;
      }
    }
    if (stdin_fd >= 0) {
      pfds[nfds] = {stdin_fd, POLLOUT, 0};
      map[nfds++] = 2;
    }
    int rc = poll(pfds, nfds, 100);
    if (rc < 0 && errno != EINTR) break;
    for (int k = 0; k < nfds && rc > 0; ++k) {
      if (pfds[k].revents == 0) continue;
      int i = map[k];
      if (i == 2) {
        ssize_t w = ::write(stdin_fd, spec.stdin_data.data() + stdin_off, spec.stdin_data.size() - stdin_off);
        if (w > 0) stdin_off += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) stdin_off = spec.stdin_data.size();
        if (stdin_off >= spec.stdin_data.size() || (pfds[k].revents & (POLLERR | POLLHUP))) {
          close(stdin_fd);
          stdin_fd = -1;
        }
        continue;
      }
      ssize_t r = ::read(fds[i], buf, sizeof buf);
      if (r > 0) {
        last_output = Clock::now();
        std::string_view chunk(buf, static_cast<std::size_t>(r));
        if (i == 0) {
          append_capped(result.out, chunk, spec.max_capture, result.truncated);
          if (spec.on_stdout) spec.on_stdout(chunk);
        } else {
          append_capped(result.err, chunk, spec.max_capture, result.truncated);
          if (spec.on_stderr) spec.on_stderr(chunk);
        }
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i]);
        fds[i] = -1;
      }
    }
    if (spec.on_tick && !killed) spec.on_tick();
    if (!killed) {
      auto now = Clock::now();
      if (spec.timeout.count() > 0 && now - start > spec.timeout) {
        result.timed_out = killed = true;
      } else if (spec.silence_timeout.count() > 0 && now - last_output > spec.silence_timeout) {
        result.silent_too_long = killed = true;
      } else if (spec.cancel && spec.cancel->load()) {
        result.cancelled = killed = true;
      } else if (spec.max_rss_bytes > 0 && now - last_rss_sample >= std::chrono::milliseconds(100)) {
        last_rss_sample = now;
        auto rss = resident_bytes(pid);
        result.peak_rss_bytes = std::max(result.peak_rss_bytes, rss);
        if (rss > spec.max_rss_bytes) result.memory_exceeded = killed = true;
      }
      if (killed) kill_group(pid);
    }
  }
  if (stdin_fd >= 0) close(stdin_fd);
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Grandchildren that kept no pipe open may still run; the group dies with us.
  if (killed) kill_group(pid);
  trim_capped(result.out, spec.max_capture, result.truncated);
  trim_capped(result.err, spec.max_capture, result.truncated);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  return result;
}

ProcessRunner& default_process_runner() {
  static PosixProcessRunner runner;
  return runner;
}

}  // namespace flurry
