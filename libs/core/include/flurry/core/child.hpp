#pragma once
// A long-running child process (a server, a service) that outlives the
// call that started it: the launcher and the integration tests use it.
// argv only, its own process group, output to a file.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flurry/core/error.hpp"

namespace flurry {

struct ChildSpec {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // added to the inherited environment
  std::string log_path;                    // stdout and stderr appended here; empty = inherit
  std::string cwd;
};

class ChildProcess {
 public:
  static Result<std::unique_ptr<ChildProcess>> spawn(const ChildSpec& spec);
  ~ChildProcess();  // kills the group if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  // True until the child has exited (reaps it if it did).
  bool running();
  // Exit status once ended: exit code, or 128 + signal.
  int exit_status() const { return status_; }
  // SIGTERM, then SIGKILL to the whole group after `grace`. Returns the exit status.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // SIGKILL to the whole group, at once.
  void kill_now();
  // Sends a signal to the child only.
  void signal(int sig);
  // True if the child process itself (not a descendant) holds a listening
  // TCP socket on `port` (read from /proc).
  bool listens_on(int port) const;

 private:
  explicit ChildProcess(int pid) : pid_(pid) {}
  int pid_;
  bool exited_ = false;
  int status_ = -1;
};

// Asks the kernel for a free loopback TCP port (bind to 0, then release);
// never the same port twice in one process. Another process may still take
// it before the caller binds it: launchers check who answers (Stack).
int free_tcp_port();
// Waits until something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

// A child serving on a loopback port of its own.
struct ListeningChild {
  std::unique_ptr<ChildProcess> child;
  int port = 0;
};

// Starts `spec_for(port)` and waits until that very child listens on the
// port: something else answering there does not count. A free port races
// with every other process on the machine, so when the child exits while
// another process holds its port, it is started again on a fresh port (a
// few times). `port` 0 picks one. Errors: the child exited for another
// reason (see its log), or did not listen within `timeout`.
Result<ListeningChild> spawn_listening(const std::function<Result<ChildSpec>(int port)>& spec_for, int port,
                                       std::chrono::milliseconds timeout);

}  // namespace flurry
