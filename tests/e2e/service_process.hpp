#pragma once
// Starts one Flurry service binary for an end-to-end test: its config
// written to a file, its output to a log file, and waits until it listens
// and /healthz answers 200.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "flurry/core/child.hpp"
#include "flurry/core/config.hpp"
#include "flurry/http/http.hpp"
#include "flurry/test/servers.hpp"

namespace flurry::test {

struct ServiceProcess {
  std::string name;
  std::string log_path;
  std::unique_ptr<ChildProcess> proc;
  int port = 0;
  std::string log() const { return read_file(log_path).value_or(""); }
};

// `binary` relative to the build directory (e.g. "services/builder/flurry-builder");
// `config_for(port)` is its config, listening on `port` (which moves to
// another free port if some other process takes it first).
inline ServiceProcess start_service(const std::string& name, const std::string& binary,
                                    const std::function<std::string(int port)>& config_for, const TempDir& dir,
                                    const std::map<std::string, std::string>& env = {}) {
  ServiceProcess s{name, dir.file(name + ".log"), nullptr};
  auto started = spawn_listening(
      [&](int port) -> Result<ChildSpec> {
        write_file(dir.file(name + ".toml"), config_for(port));
        return ChildSpec{.argv = {std::string(FLURRY_BINARY_DIR) + "/" + binary, "--config", dir.file(name + ".toml")},
                         .env = env,
                         .log_path = s.log_path};
      },
      0, std::chrono::seconds(30));
  if (!started) throw std::runtime_error("cannot start " + name + ": " + started.error().message + "\n" + s.log());
  s.proc = std::move(started->child);
  s.port = started->port;
  auto client = http::make_client();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (s.proc->running() && std::chrono::steady_clock::now() < deadline) {
    auto r = client->send({.url = "http://127.0.0.1:" + std::to_string(s.port) + "/healthz", .timeout = std::chrono::seconds(2)});
    if (r && r->status == 200) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw std::runtime_error(name + " did not become healthy: " + s.log());
}

}  // namespace flurry::test
