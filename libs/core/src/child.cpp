#include "flurry/core/child.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace flurry {

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const ChildSpec& spec) {
  if (spec.argv.empty()) return fail(Error::poison("child: empty argv"));
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos && spec.env.count(kv.substr(0, eq))) continue;
    env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = spec.argv;
  std::vector<char*> argv;
  for (auto& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);

  int log_fd = -1;
  if (!spec.log_path.empty()) {
    log_fd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return fail(Error::transient("child: cannot open " + spec.log_path + ": " + strerror(errno)));
  }
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) return fail(Error::transient("child: pipe failed"));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return fail(Error::transient(std::string("child: fork: ") + strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    // If whoever started us dies without stopping us (SIGKILL, a test
    // timeout), stop too instead of lingering as an orphan.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (log_fd >= 0) {
      dup2(log_fd, 1);
      dup2(log_fd, 2);
    }
    if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) _exit(127);
    execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    (void)!::write(exec_pipe[1], &e, sizeof e);
    _exit(127);
  }
  setpgid(pid, pid);
  close(exec_pipe[1]);
  if (log_fd >= 0) close(log_fd);
  int err = 0;
  if (::read(exec_pipe[0], &err, sizeof err) == static_cast<ssize_t>(sizeof err)) {
    close(exec_pipe[0]);
    waitpid(pid, nullptr, 0);
    return fail(Error::rejected("child: cannot run " + spec.argv[0] + ": " + strerror(err)));
  }
  close(exec_pipe[0]);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() {
  if (!exited_) {
    kill_now();
  }
}

bool ChildProcess::running() {
  if (exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  if (!running()) return status_;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) {
      ::kill(-pid_, SIGKILL);  // leftovers in its group
      return status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill_now();
  return status_;
}

void ChildProcess::kill_now() {
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  if (!exited_) {
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) {
      exited_ = true;
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}

void ChildProcess::signal(int sig) { ::kill(pid_, sig); }

int free_tcp_port() {
  // The kernel may hand the same free port to two binds in a row once the
  // first is released; a process that asks for several ports before
  // anything listens on them (a whole stack) must get distinct ones.
  static std::mutex mu;
  static std::set<int> given;
  std::lock_guard lock(mu);
  for (int attempt = 0; attempt < 64; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    int port = ntohs(addr.sin_port);
    ::close(fd);
    if (given.insert(port).second) return port;
  }
  return -1;
}

bool wait_for_port(int port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

namespace {

// Inodes of the sockets listening on `port` (any address, IPv4 and IPv6).
std::set<std::string> listening_inodes(int port) {
  std::set<std::string> inodes;
  char want[8];
  std::snprintf(want, sizeof want, "%04X", port);
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retrans, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retrans >> uid >> timeout >> inode;
      auto colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
      if (local.substr(colon + 1) == want) inodes.insert(inode);
    }
  }
  return inodes;
}

}  // namespace

bool ChildProcess::listens_on(int port) const {
  auto inodes = listening_inodes(port);
  if (inodes.empty()) return false;
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/fd", ec)) {
    auto target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (ec || target.rfind("socket:[", 0) != 0) continue;
    if (inodes.count(target.substr(8, target.size() - 9))) return true;
  }
  return false;
}

Result<ListeningChild> spawn_listening(const std::function<Result<ChildSpec>(int port)>& spec_for, int port,
                                       std::chrono::milliseconds timeout) {
  constexpr int kAttempts = 5;
  if (port == 0) port = free_tcp_port();
  for (int attempt = 1;; ++attempt) {
    auto spec = spec_for(port);
    if (!spec) return fail(spec.error());
    auto child = ChildProcess::spawn(*spec);
    if (!child) return fail(child.error());
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline && (*child)->running() && !(*child)->listens_on(port)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if ((*child)->running()) {
      if ((*child)->listens_on(port)) return ListeningChild{std::move(*child), port};
      return fail(Error::transient(spec->argv[0] + " did not listen on port " + std::to_string(port) + " within " +
                                   std::to_string(timeout.count()) + " ms"));
    }
    const bool taken = wait_for_port(port, std::chrono::milliseconds(100));
    if (!taken || attempt == kAttempts) {
      return fail(Error::rejected(spec->argv[0] + " exited with status " + std::to_string((*child)->exit_status()) +
                                  (taken ? " (port " + std::to_string(port) + " is taken)" : "")));
    }
    port = free_tcp_port();  // another process took the port first
  }
}

}  // namespace flurry
