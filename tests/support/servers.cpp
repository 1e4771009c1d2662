#include "flurry/test/servers.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace flurry::test {
namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (std::getenv("FLURRY_KEEP_TMP")) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

NatsServer::NatsServer(const std::string& data_dir) : dir_(data_dir), port_(0) {
  fs::create_directories(dir_);
  start();
}
NatsServer::~NatsServer() { stop(); }

void NatsServer::start() {
  // The first start may move to another port; a restart asks for the same one.
  auto started = spawn_listening(
      [this](int port) -> Result<ChildSpec> {
        return ChildSpec{.argv = {"nats-server", "-js", "-a", "127.0.0.1", "-p", std::to_string(port), "-sd", dir_ + "/jetstream"},
                         .log_path = dir_ + "/nats.log"};
      },
      port_, std::chrono::seconds(15));
  if (!started) throw std::runtime_error("nats-server did not start (" + started.error().message + "); see " + dir_ + "/nats.log");
  proc_ = std::move(started->child);
  port_ = started->port;
}
void NatsServer::stop() {
  if (proc_) proc_->stop(std::chrono::seconds(10));
  proc_.reset();
}
void NatsServer::restart() {
  stop();
  start();
}
void NatsServer::kill() {
  if (proc_) proc_->kill_now();
  proc_.reset();
}

RedisServer::RedisServer(const std::string& data_dir) : dir_(data_dir), port_(0) {
  fs::create_directories(dir_);
  start();
}
RedisServer::~RedisServer() { stop(); }

void RedisServer::start() {
  auto started = spawn_listening(
      [this](int port) -> Result<ChildSpec> {
        return ChildSpec{.argv = {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port), "--dir", dir_,
                                  "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"},
                         .log_path = dir_ + "/redis.log"};
      },
      port_, std::chrono::seconds(15));
  if (!started) throw std::runtime_error("redis-server did not start (" + started.error().message + "); see " + dir_ + "/redis.log");
  proc_ = std::move(started->child);
  port_ = started->port;
}
void RedisServer::stop() {
  if (proc_) proc_->stop(std::chrono::seconds(10));
  proc_.reset();
}
void RedisServer::restart() {
  stop();
  start();
}
void RedisServer::kill() {
  if (proc_) proc_->kill_now();
  proc_.reset();
}

void write_file(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string test_nix_config() {
  return "experimental-features = nix-command flakes\nsandbox = false\nsubstituters =\nflake-registry = /dev/null\n";
}

}  // namespace flurry::test
