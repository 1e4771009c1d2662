#include "flurry/stack/stack.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "flurry/core/crypto.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/process.hpp"
#include "flurry/http/http.hpp"

namespace flurry::stack {
namespace fs = std::filesystem;

namespace {

Result<void> write_private_file(const std::string& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return fail(Error::transient("cannot write " + path));
  ::chmod(path.c_str(), 0600);
  return {};
}

std::string toml_string(const std::string& s) {
  // TOML basic strings share JSON's escapes.
  return nlohmann::json(s).dump();
}

std::string toml_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_string(v[i]);
  return out + "]";
}

Result<ProcessResult> run_checked(const ProcessSpec& spec) {
  auto r = default_process_runner().run(spec);
  if (!r) return r;
  if (!r->ok()) {
    return fail(Error::rejected(spec.argv[0] + " " + (spec.argv.size() > 1 ? spec.argv[1] : "") + " failed (" +
                                r->describe() + "): " + r->err));
  }
  return r;
}

}  // namespace

const std::vector<std::string>& service_names() {
  static const std::vector<std::string> kNames = {"reporter", "uploader", "effects-runner", "builder", "evaluator",
                                                  "web", "webhook-ingest"};
  return kNames;
}

Stack::Stack(StackOptions options) : options_(std::move(options)) {
  options_.state_dir = fs::absolute(options_.state_dir).lexically_normal().string();
}

Stack::~Stack() { stop(); }

std::string Stack::webhook_url(const std::string& forge) const { return service_url("webhook-ingest") + "/webhooks/" + forge; }
std::string Stack::webhook_secret() const {
  // As the services read it: trailing newlines are not part of the secret.
  auto s = read_file(options_.state_dir + "/secrets/webhook-secret").value_or("");
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}
std::string Stack::service_url(const std::string& name) const {
  auto it = ports_.find(name);
  return "http://127.0.0.1:" + std::to_string(it == ports_.end() ? 0 : it->second);
}
std::string Stack::nats_url() const { return "nats://127.0.0.1:" + std::to_string(nats_port_); }
std::string Stack::cache_dir() const { return options_.state_dir + "/cache"; }
std::string Stack::cache_public_key() const {
  return read_file(options_.state_dir + "/secrets/cache.pub").value_or("");
}
std::string Stack::config_path() const { return options_.state_dir + "/flurry.toml"; }
std::string Stack::log_path(const std::string& name) const { return options_.state_dir + "/logs/" + name + ".log"; }

std::string Stack::binary_for(const std::string& name) const {
  for (const auto& candidate : {options_.bin_dir + "/services/" + name + "/flurry-" + name, options_.bin_dir + "/flurry-" + name}) {
    if (fs::exists(candidate)) return candidate;
  }
  return options_.bin_dir + "/flurry-" + name;
}

int Stack::fixed_port(const std::string& name) const {
  if (name == "webhook-ingest") return options_.ingest_port;
  if (name == "web") return options_.web_port;
  return 0;
}

Result<void> Stack::write_config() {
  const auto& d = options_.state_dir;
  for (const char* sub : {"logs", "secrets", "nats", "redis", "evaluator", "effects", "cache"}) {
    fs::create_directories(d + "/" + sub);
  }
  // Secrets are made once and kept, so forges pointed at this stack keep working.
  if (!fs::exists(d + "/secrets/webhook-secret")) {
    if (auto r = write_private_file(d + "/secrets/webhook-secret", crypto::random_hex(32) + "\n"); !r) return r;
  }
  if (!fs::exists(d + "/secrets/api-token")) {
    if (auto r = write_private_file(d + "/secrets/api-token", crypto::random_hex(24) + "\n"); !r) return r;
  }
  if (!fs::exists(d + "/secrets/cache.key")) {
    auto r = run_checked({.argv = {"nix-store", "--generate-binary-cache-key", "flurry-local-1", d + "/secrets/cache.key",
                                   d + "/secrets/cache.pub"},
                          .env = options_.env});
    if (!r) return fail(r.error());
    ::chmod((d + "/secrets/cache.key").c_str(), 0600);
  }
  for (const auto& [forge, account] : options_.forges) {
    if (forge != "github" && forge != "gitea" && forge != "gitlab") return fail(Error::rejected("unknown forge " + forge));
    if (!account.app_id.empty()) {
      if (auto r = write_private_file(d + "/secrets/" + forge + "-app.pem", account.private_key_pem); !r) return r;
    } else if (auto r = write_private_file(d + "/secrets/" + forge + "-token", account.token + "\n"); !r) {
      return r;
    }
  }
  std::map<std::string, std::string> secret_files;
  for (const auto& [key, json] : options_.effect_secrets) {
    auto path = d + "/secrets/effects-" + std::to_string(secret_files.size()) + ".json";
    if (auto r = write_private_file(path, json); !r) return r;
    secret_files[key] = path;
  }

  // Sections in order, each an ordered list of key = TOML value.
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> sections;
  auto put = [&](const std::string& section, const std::string& key, const std::string& value) {
    auto sec = std::find_if(sections.begin(), sections.end(), [&](const auto& p) { return p.first == section; });
    if (sec == sections.end()) {
      sections.push_back({section, {}});
      sec = std::prev(sections.end());
    }
    auto kv = std::find_if(sec->second.begin(), sec->second.end(), [&](const auto& p) { return p.first == key; });
    if (kv == sec->second.end()) sec->second.emplace_back(key, value);
    else kv->second = value;
  };
  auto listen = [&](const std::string& name) { return toml_string("127.0.0.1:" + std::to_string(ports_.at(name))); };
  put("log", "level", toml_string(options_.log_level));
  put("nats", "url", toml_string(nats_url()));
  put("redis", "host", toml_string("127.0.0.1"));
  put("redis", "port", std::to_string(redis_port_));
  put("webhook-ingest", "listen", listen("webhook-ingest"));
  put("webhook-ingest", "allowed_url_schemes", toml_list(options_.allowed_url_schemes));  // for polled repositories
  // One secret for every forge's webhooks (GitLab's token is the secret itself).
  for (const char* forge : {"github", "gitea", "gitlab"}) {
    put(std::string("webhook-ingest.") + forge, "secret_file", toml_string(d + "/secrets/webhook-secret"));
  }
  put("evaluator", "listen", listen("evaluator"));
  put("evaluator", "work_dir", toml_string(d + "/evaluator"));
  put("evaluator", "allowed_url_schemes", toml_list(options_.allowed_url_schemes));
  put("evaluator", "public_url", toml_string(options_.public_url));
  put("builder", "listen", listen("builder"));
  put("builder", "public_url", toml_string(options_.public_url));
  put("builder", "queue_poll_interval", toml_string("1s"));
  put("uploader", "listen", listen("uploader"));
  put("uploader", "caches", toml_list({"file://" + cache_dir()}));
  put("uploader", "secret_key_file", toml_string(d + "/secrets/cache.key"));
  // Kept beside the rest (a deployment points gcroots_dir into /nix/var/nix/gcroots).
  put("uploader", "gcroots_dir", toml_string(d + "/gcroots"));
  put("uploader", "outputs_dir", toml_string(d + "/outputs"));
  put("effects-runner", "listen", listen("effects-runner"));
  put("effects-runner", "work_dir", toml_string(d + "/effects"));
  put("effects-runner", "allowed_url_schemes", toml_list(options_.allowed_url_schemes));
  put("effects-runner", "extra_sandbox_paths", toml_list({"/bin", "/lib", "/lib64", "/usr"}));
  put("effects-runner", "public_url", toml_string(options_.public_url));
  for (const auto& [key, path] : secret_files) put("effects-runner.secrets", toml_string(key), toml_string(path));
  put("web", "listen", listen("web"));
  put("web", "api_token_file", toml_string(d + "/secrets/api-token"));
  put("web", "public_url", toml_string(options_.public_url));
  put("reporter", "listen", listen("reporter"));
  put("reporter", "public_url", toml_string(options_.public_url));
  for (const auto& [forge, account] : options_.forges) {
    put(forge, "api_url", toml_string(account.api_url));
    if (account.app_id.empty()) {
      put(forge, "token_file", toml_string(d + "/secrets/" + forge + "-token"));
    } else {
      put(forge, "app_id", toml_string(account.app_id));
      put(forge, "private_key_file", toml_string(d + "/secrets/" + forge + "-app.pem"));
    }
    if (account.checks) put(forge, "checks", "true");
  }
  for (const auto& kv : options_.extra_config) {
    auto eq = kv.find('=');
    auto key = kv.substr(0, eq);
    auto dot = key.rfind('.');
    if (eq == std::string::npos || dot == std::string::npos) {
      return fail(Error::rejected("extra config needs section.key=value: " + kv));
    }
    put(key.substr(0, dot), key.substr(dot + 1), kv.substr(eq + 1));
  }
  std::string text =
      "# Generated by flurry; regenerated on every start. Changes that last:\n"
      "# `flurry up --set section.key=value` (kept in " + d + "/settings).\n";
  for (const auto& [section, kvs] : sections) {
    text += "\n[" + section + "]\n";
    for (const auto& [k, v] : kvs) text += k + " = " + v + "\n";
  }
  try {
    (void)Config::from_string(text);  // refuse to start services on a config we wrote wrong
  } catch (const ConfigError& e) {
    return fail(Error::rejected(std::string("generated config is invalid: ") + e.what()));
  }
  std::ofstream out(config_path(), std::ios::trunc);
  out << text;
  if (!out) return fail(Error::transient("cannot write " + config_path()));
  return {};
}

// `keep_port`: the server must listen on the port it had (the services
// know only that one); otherwise a port another process took first moves
// it to a new one.
Result<void> Stack::start_nats(bool keep_port) {
  const auto& d = options_.state_dir;
  const int fixed = nats_port_;
  // JetStream keeps its streams and consumers under <state>/nats: a
  // restarted server has every message that was acked before it stopped.
  auto nats = spawn_listening(
      [&](int port) -> Result<ChildSpec> {
        if (keep_port && port != fixed) return fail(Error::rejected("port " + std::to_string(fixed) + " is taken"));
        nats_port_ = port;
        return ChildSpec{.argv = {"nats-server", "-js", "-a", "127.0.0.1", "-p", std::to_string(port), "-sd", d + "/nats"},
                         .log_path = log_path("nats-server")};
      },
      nats_port_, std::chrono::seconds(20));
  if (!nats) return fail(Error::transient("nats-server did not start (" + nats.error().message + "); see " + log_path("nats-server")));
  nats_ = std::move(nats->child);
  return {};
}

Result<void> Stack::start_redis(bool keep_port) {
  const auto& d = options_.state_dir;
  const int fixed = redis_port_;
  // As deployed (docker-compose.yml): the append-only file, fsynced every
  // second, so build state survives a restart.
  auto redis = spawn_listening(
      [&](int port) -> Result<ChildSpec> {
        if (keep_port && port != fixed) return fail(Error::rejected("port " + std::to_string(fixed) + " is taken"));
        redis_port_ = port;
        return ChildSpec{.argv = {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port), "--dir", d + "/redis",
                                  "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"},
                         .log_path = log_path("redis-server")};
      },
      redis_port_, std::chrono::seconds(20));
  if (!redis) return fail(Error::transient("redis-server did not start (" + redis.error().message + "); see " + log_path("redis-server")));
  redis_ = std::move(redis->child);
  return {};
}

Result<void> Stack::start_servers() {
  if (auto r = start_nats(false); !r) return r;
  if (auto r = start_redis(false); !r) return r;
  return write_config();
}

void Stack::stop_server(const std::string& name, bool hard) {
  if (name != "nats-server" && name != "redis-server") return;
  auto& child = name == "nats-server" ? nats_ : redis_;
  if (!child) return;
  if (hard) child->kill_now();
  else child->stop(std::chrono::seconds(10));
  child.reset();
}

Result<void> Stack::start_server(const std::string& name) {
  if (name != "nats-server" && name != "redis-server") return fail(Error::rejected("no server called " + name));
  auto& child = name == "nats-server" ? nats_ : redis_;
  if (child && child->running()) return {};
  child.reset();
  return name == "nats-server" ? start_nats(true) : start_redis(true);
}

Result<void> Stack::wait_healthy(const std::string& name, std::chrono::milliseconds timeout) {
  auto client = http::make_client();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    auto it = services_.find(name);
    if (it != services_.end() && !it->second->running()) {
      return fail(Error::rejected(name + " exited with status " + std::to_string(it->second->exit_status()) + "; see " +
                                  log_path(name)));
    }
    auto r = client->send({.method = "GET", .url = service_url(name) + "/healthz", .timeout = std::chrono::seconds(2)});
    if (r && r->status == 200) return {};
    if (r) last = "HTTP " + std::to_string(r->status) + " " + r->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return fail(Error::transient(name + " is not healthy (" + last + "); see " + log_path(name)));
}

Result<void> Stack::start_service(const std::string& name) {
  const int fixed = fixed_port(name);
  // Only this service's listen address changes when its port must move;
  // the others read theirs at start and keep them.
  auto started = spawn_listening(
      [&](int port) -> Result<ChildSpec> {
        if (fixed != 0 && port != fixed) return fail(Error::rejected("port " + std::to_string(fixed) + " is taken"));
        ports_[name] = port;
        if (auto r = write_config(); !r) return fail(r.error());
        return ChildSpec{.argv = {binary_for(name), "--config", config_path()}, .env = options_.env, .log_path = log_path(name)};
      },
      ports_.at(name), std::chrono::seconds(30));
  if (!started) return fail(Error{started.error().code, name + ": " + started.error().message + "; see " + log_path(name)});
  services_[name] = std::move(started->child);
  return wait_healthy(name, std::chrono::seconds(30));
}

Result<void> Stack::start() {
  fs::create_directories(options_.state_dir);
  nats_port_ = free_tcp_port();
  redis_port_ = free_tcp_port();
  for (const auto& name : service_names()) ports_[name] = fixed_port(name) != 0 ? fixed_port(name) : free_tcp_port();
  if (auto r = write_config(); !r) return r;
  if (auto r = start_servers(); !r) return r;
  for (const auto& name : service_names()) {
    if (auto r = start_service(name); !r) return r;
  }
  return {};
}

std::vector<std::string> Stack::stop() {
  std::vector<std::string> unclean;
  // Producers first, so consumers can drain what is in flight.
  auto names = service_names();
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    auto s = services_.find(*it);
    if (s == services_.end() || !s->second) continue;
    int status = s->second->stop(std::chrono::seconds(30));
    if (status != 0) unclean.push_back(*it + " (exit " + std::to_string(status) + ")");
    services_.erase(s);
  }
  if (redis_) redis_->stop(std::chrono::seconds(10));
  if (nats_) nats_->stop(std::chrono::seconds(10));
  redis_.reset();
  nats_.reset();
  return unclean;
}

std::vector<std::string> Stack::dead_children() {
  std::vector<std::string> dead;
  for (auto& [name, child] : services_) {
    if (child && !child->running()) dead.push_back(name);
  }
  if (nats_ && !nats_->running()) dead.push_back("nats-server");
  if (redis_ && !redis_->running()) dead.push_back("redis-server");
  return dead;
}

void Stack::kill_service(const std::string& name) {
  auto it = services_.find(name);
  if (it != services_.end() && it->second) it->second->kill_now();
}

Result<std::string> commit_all(const std::string& repo_dir, const std::string& message) {
  const std::map<std::string, std::string> env = {{"GIT_AUTHOR_NAME", "Flurry"}, {"GIT_AUTHOR_EMAIL", "flurry@localhost"},
                                                  {"GIT_COMMITTER_NAME", "Flurry"}, {"GIT_COMMITTER_EMAIL", "flurry@localhost"}};
  if (auto r = run_checked({.argv = {"git", "-C", repo_dir, "add", "-A"}, .env = env}); !r) return fail(r.error());
  auto status = run_checked({.argv = {"git", "-C", repo_dir, "status", "--porcelain"}, .env = env});
  if (!status) return fail(status.error());
  auto head = default_process_runner().run({.argv = {"git", "-C", repo_dir, "rev-parse", "--verify", "-q", "HEAD"}});
  bool has_head = head && head->ok();
  if (!status->out.empty() || !has_head) {
    if (auto r = run_checked({.argv = {"git", "-C", repo_dir, "commit", "-q", "--allow-empty", "-m", message}, .env = env}); !r) {
      return fail(r.error());
    }
  }
  auto rev = run_checked({.argv = {"git", "-C", repo_dir, "rev-parse", "HEAD"}});
  if (!rev) return fail(rev.error());
  std::string out = rev->out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

Result<std::string> commit_directory(const std::string& source_dir, const std::string& repo_dir, const std::string& message) {
  std::error_code ec;
  fs::create_directories(repo_dir, ec);
  if (!fs::exists(repo_dir + "/.git")) {
    if (auto r = run_checked({.argv = {"git", "init", "-q", "-b", "main", repo_dir}}); !r) return fail(r.error());
  }
  // Mirror the source: remove tracked files that are gone, copy the rest.
  for (const auto& entry : fs::directory_iterator(repo_dir)) {
    if (entry.path().filename() == ".git") continue;
    fs::remove_all(entry.path(), ec);
  }
  fs::copy(source_dir, repo_dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) return fail(Error::transient("cannot copy " + source_dir + ": " + ec.message()));
  return commit_all(repo_dir, message);
}

std::string github_push_payload(const std::string& owner, const std::string& name, const std::string& clone_url,
                                const std::string& branch, const std::string& default_branch, const std::string& before,
                                const std::string& after) {
  nlohmann::json j = {
      {"ref", "refs/heads/" + branch},
      {"before", before},
      {"after", after},
      {"created", before == std::string(40, '0')},
      {"deleted", false},
      {"forced", false},
      {"repository",
       {{"name", name},
        {"full_name", owner + "/" + name},
        {"owner", {{"login", owner}, {"name", owner}}},
        {"clone_url", clone_url},
        {"html_url", ""},
        {"default_branch", default_branch},
        {"private", false}}},
      {"pusher", {{"name", owner}}},
      {"sender", {{"login", owner}}},
      {"head_commit", {{"id", after}, {"message", "local push"}}},
  };
  return j.dump();
}

}  // namespace flurry::stack
