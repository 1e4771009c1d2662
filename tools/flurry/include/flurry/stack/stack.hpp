#pragma once
// A whole Flurry installation on one machine: nats-server, redis-server and
// the six services as child processes on loopback, with all data under one
// state directory. `flurry up` runs it for people; the end-to-end and fault
// tests run it for assertions.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flurry/core/child.hpp"
#include "flurry/core/error.hpp"

namespace flurry::stack {

// The services in start order (consumers before producers).
const std::vector<std::string>& service_names();

struct StackOptions {
  std::string state_dir;          // created if missing; everything lives here
  std::string bin_dir;            // build tree (services/<name>/flurry-<name>) or a flat bin dir
  int ingest_port = 0;            // 0 = any free port
  int web_port = 0;               // 0 = any free port
  // Forges the reporter posts statuses to: "github", "gitea", "gitlab" ->
  // API base URL and token (written to a secret file). None: it only logs.
  struct ForgeAccount {
    std::string api_url;
    std::string token;            // a fixed token, or:
    std::string app_id;           // GitHub: as this GitHub App,
    std::string private_key_pem;  // with this key,
    bool checks = false;          // posting check runs instead of statuses
  };
  std::map<std::string, ForgeAccount> forges;
  std::string public_url;         // base of status and check-run links (every service's public_url); empty = none
  std::string log_level = "info";
  std::vector<std::string> allowed_url_schemes = {"https", "ssh", "git", "file"};
  // Extra "key=value" TOML assignments appended to the generated config
  // (e.g. "builder.slots=4").
  std::vector<std::string> extra_config;
  // Effect secrets: "github:owner/repo" -> JSON text written to a file.
  std::map<std::string, std::string> effect_secrets;
  // Environment for every child (e.g. NIX_CONFIG).
  std::map<std::string, std::string> env;
};

class Stack {
 public:
  explicit Stack(StackOptions options);
  ~Stack();  // stops everything

  // Starts servers and services and waits until each answers /healthz.
  Result<void> start();
  // SIGTERM to every service (then the servers); returns the services whose
  // exit status was not 0.
  std::vector<std::string> stop();

  const StackOptions& options() const { return options_; }
  // http://127.0.0.1:<ingest>/webhooks/<forge>; every forge's webhooks are
  // signed with webhook_secret().
  std::string webhook_url(const std::string& forge = "github") const;
  std::string webhook_secret() const;
  std::string service_url(const std::string& name) const;  // http://127.0.0.1:<port>
  std::string nats_url() const;
  int redis_port() const { return redis_port_; }
  std::string cache_dir() const;     // the file:// binary cache uploader fills
  std::string cache_public_key() const;
  std::string config_path() const;
  std::string log_path(const std::string& name) const;
  // Names of children that died on their own (crashed) since start.
  std::vector<std::string> dead_children();

  // For fault tests.
  // SIGKILL to the service's process group (nix builds it runs die too).
  void kill_service(const std::string& name);
  // Starts a service that is not running (again) and waits until it answers
  // /healthz.
  Result<void> start_service(const std::string& name);
  // Stops nats-server or redis-server ("nats-server", "redis-server"): SIGKILL
  // when `hard`, else SIGTERM (redis writes its AOF, nats closes its store
  // files). Services are not told; they see a lost connection.
  void stop_server(const std::string& name, bool hard);
  // Starts a stopped server again on the same port with the same data
  // directory (JetStream file store, Redis AOF), so what it held before is
  // back; waits until it accepts connections.
  Result<void> start_server(const std::string& name);

 private:
  Result<void> write_config();
  Result<void> start_servers();
  Result<void> start_nats(bool keep_port);
  Result<void> start_redis(bool keep_port);
  Result<void> wait_healthy(const std::string& name, std::chrono::milliseconds timeout);
  std::string binary_for(const std::string& name) const;
  // The port the options fix for a service; 0 when any will do.
  int fixed_port(const std::string& name) const;

  StackOptions options_;
  int nats_port_ = 0;
  int redis_port_ = 0;
  std::map<std::string, int> ports_;
  std::unique_ptr<ChildProcess> nats_;
  std::unique_ptr<ChildProcess> redis_;
  std::map<std::string, std::unique_ptr<ChildProcess>> services_;
};

// Copies `source_dir` into a git repository at `repo_dir` (created with a
// `main` branch if missing), commits if anything changed, and returns the
// HEAD revision.
Result<std::string> commit_directory(const std::string& source_dir, const std::string& repo_dir, const std::string& message);
// Commits the working tree of an existing repository; returns HEAD.
Result<std::string> commit_all(const std::string& repo_dir, const std::string& message);

// A GitHub `push` webhook body for a local repository, shaped like
// GitHub's documented payload.
std::string github_push_payload(const std::string& owner, const std::string& name, const std::string& clone_url,
                                const std::string& branch, const std::string& default_branch,
                                const std::string& before, const std::string& after);

}  // namespace flurry::stack
