#pragma once
// Real servers for integration and end-to-end tests: nats-server with
// JetStream and redis-server, each on a free loopback port with its data
// in a fresh temporary directory, stopped when the object dies.
#include <memory>
#include <string>

#include "flurry/core/child.hpp"

namespace flurry::test {

// A fresh directory under $TMPDIR, removed (recursively) on destruction
// unless FLURRY_KEEP_TMP is set.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "flurry-test");
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class NatsServer {
 public:
  // Starts and waits until it accepts connections; throws on failure.
  explicit NatsServer(const std::string& data_dir);
  ~NatsServer();
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  void stop();
  void restart();  // same port and data directory
  void kill();     // SIGKILL, no clean shutdown

 private:
  void start();
  std::string dir_;
  int port_;
  std::unique_ptr<ChildProcess> proc_;
};

class RedisServer {
 public:
  explicit RedisServer(const std::string& data_dir);  // AOF on, like production
  ~RedisServer();
  int port() const { return port_; }
  void stop();
  void restart();
  void kill();

 private:
  void start();
  std::string dir_;
  int port_;
  std::unique_ptr<ChildProcess> proc_;
};

// Writes `content` to `path`, creating parent directories.
void write_file(const std::string& path, const std::string& content);

// The nix environment tests and the launcher use on these machines: flakes
// on, no sandbox, no substituters (no network), no global registry.
std::string test_nix_config();

}  // namespace flurry::test
