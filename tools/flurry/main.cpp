// flurry: runs a whole Flurry installation on this machine.
//
//   flurry up [--state-dir DIR] [--port N] [--web-port N] [--example DIR]
//             [--no-example] [--exit-when-done] [--timeout SECONDS]
//             [--github-api-url URL (--github-token-file FILE |
//              --github-app-id ID --github-app-key-file PEM [--github-checks])]
//             [--set section.key=value]... [--unset NAME]...
//
// Starts nats-server, redis-server and every service on loopback with
// all data under the state directory, pushes the bundled example flake
// through them as a signed GitHub webhook, prints each attribute's result
// as it lands, then keeps the stack running until Ctrl-C (or exits with
// --exit-when-done: status 0 when the example's eval succeeded). Forge
// flags and --set values are kept in the state directory for later starts;
// status and check-run links point at the web service.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "flurry/core/config.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/http/http.hpp"
#include "flurry/stack/stack.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"
#include "src/up_settings.hpp"

namespace fs = std::filesystem;
using namespace flurry;
using up::UpFlags;
using up::absolute_path;
using up::forges_with_example_urls;

namespace {

bool g_color = isatty(1);
std::string paint(const char* code, const std::string& s) { return g_color ? std::string("\033[") + code + "m" + s + "\033[0m" : s; }
void say(const std::string& s) { std::cout << paint("1", "flurry: ") << s << std::endl; }

// True when SIGINT/SIGTERM arrived within `wait`.
bool interrupted(std::chrono::milliseconds wait) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{static_cast<time_t>(wait.count() / 1000), static_cast<long>((wait.count() % 1000) * 1000000)};
  return sigtimedwait(&set, nullptr, &ts) > 0;
}

std::string mark(msg::JobState s) {
  if (msg::is_success(s)) return paint("32", "✓");
  if (s == msg::JobState::kCancelled) return paint("33", "-");
  return paint("31", "✗");
}

struct Watch {
  bool finished = false;
  bool succeeded = false;
  bool stopped = false;
};

// Prints job results of `eval_id` as they land (a job that did not
// succeed with its page on `web`), then the effects.
Watch watch_eval(state::StateStore& store, const std::string& eval_id, const std::string& web, std::chrono::seconds timeout) {
  Watch w;
  std::map<std::string, msg::JobState> shown;
  bool announced = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<state::EvalRecord> eval;
  while (std::chrono::steady_clock::now() < deadline) {
    if (interrupted(std::chrono::milliseconds(200))) {
      w.stopped = true;
      return w;
    }
    auto e = store.get_eval(eval_id);
    if (!e || !e->has_value()) continue;
    eval = **e;
    if (!announced && eval->state != state::EvalState::kEvaluating) {
      if (!eval->error.empty()) say(paint("31", "evaluation failed: ") + eval->error);
      else say("eval " + eval_id + ": " + std::to_string(eval->jobs_total) + " jobs");
      for (const auto& warning : eval->warnings) say(paint("33", warning));
      announced = true;
    }
    auto jobs = store.list_jobs(eval_id);
    if (jobs) {
      for (const auto& j : *jobs) {
        if (!msg::is_terminal(j.state) || shown.count(j.id)) continue;
        shown[j.id] = j.state;
        std::string line = "  " + mark(j.state) + " " + j.attr + "  " + std::string(msg::to_string(j.state));
        if (!j.error.empty() && !msg::is_success(j.state)) line += paint("2", "  (" + j.error.substr(0, j.error.find('\n')) + ")");
        if (!msg::is_success(j.state) && !web.empty()) line += "\n      " + web + "/evals/" + eval_id + "/jobs/" + j.id;
        std::cout << line << std::endl;
      }
    }
    if (eval->state == state::EvalState::kSucceeded || eval->state == state::EvalState::kFailed ||
        eval->state == state::EvalState::kCancelled) {
      w.finished = true;
      w.succeeded = eval->state == state::EvalState::kSucceeded;
      say(std::string("eval ") + (w.succeeded ? paint("32", "succeeded") : paint("31", std::string(state::to_string(eval->state)))) +
          " (" + std::to_string(eval->jobs_total) + " jobs, " + std::to_string(eval->jobs_failed) + " not successful)" +
          (web.empty() ? "" : ": " + web + "/evals/" + eval_id));
      break;
    }
  }
  if (!w.finished) {
    say(paint("31", "timed out waiting for the eval; see the logs under the state directory"));
    return w;
  }
  if (!w.succeeded) return w;
  // Effects run after a successful default-branch eval; wait for them to settle.
  auto effects_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::map<std::string, std::string> effects_shown;
  int quiet_rounds = 0;
  while (std::chrono::steady_clock::now() < effects_deadline) {
    if (interrupted(std::chrono::milliseconds(250))) {
      w.stopped = true;
      return w;
    }
    auto fx = store.list_effects(eval_id);
    if (!fx) continue;
    bool all_done = !fx->empty();
    for (const auto& f : *fx) {
      if (f.state == "running") {
        all_done = false;
        continue;
      }
      if (effects_shown[f.name] == f.state) continue;
      effects_shown[f.name] = f.state;
      bool ok = f.state == "succeeded";
      std::cout << "  " << (ok ? paint("32", "✓") : paint("31", "✗")) << " effect " << f.name << "  " << f.state << std::endl;
      if (!ok) w.succeeded = false;
    }
    quiet_rounds = all_done ? quiet_rounds + 1 : 0;
    if (quiet_rounds >= 4) break;
  }
  if (effects_shown.empty()) say("no effects ran");
  return w;
}

std::string default_bin_dir(const char* argv0) {
  std::error_code ec;
  auto self = fs::canonical("/proc/self/exe", ec);
  if (ec) self = fs::absolute(argv0);
  // Installed next to the services, or in the build tree's tools/flurry/.
  auto dir = self.parent_path();
  if (fs::exists(dir / "flurry-evaluator")) return dir.string();
  return dir.parent_path().parent_path().string();
}

// The state store the services' configuration names (its [redis] section).
// Throws ConfigError on a bad file.
Result<std::unique_ptr<state::StateStore>> store_from(const std::string& config_file) {
  return state::connect_redis(state::redis_options(Config::from_file(config_file)));
}

// `flurry log`: prints a job's build log (as stored so far: it grows while
// the job builds); with `follow`, keeps printing until the job ends.
int show_log(const std::string& config_file, const std::string& job_id, bool follow) {
  try {
    auto store = store_from(config_file);
    if (!store) {
      say(paint("31", "cannot reach Redis: ") + store.error().message);
      return 1;
    }
    std::size_t shown = 0;
    while (true) {
      auto job = (*store)->get_job(job_id);
      if (!job) {
        say(paint("31", "cannot read job " + job_id + ": ") + job.error().message);
        return 1;
      }
      if (!job->has_value()) {
        say(paint("31", "no job " + job_id));
        return 1;
      }
      auto log = (*store)->get_log(job_id);
      if (!log) {
        say(paint("31", "cannot read the log: ") + log.error().message);
        return 1;
      }
      // The store keeps the log's tail: when it was cut, start over.
      if (log->size() < shown) shown = 0;
      std::cout << log->substr(shown) << std::flush;
      shown = log->size();
      if (!follow || msg::is_terminal((**job).state)) return 0;
      if (interrupted(std::chrono::seconds(1))) return 130;
    }
  } catch (const ConfigError& e) {
    say(paint("31", "bad configuration: ") + e.what());
    return 2;
  }
}

// `flurry rebuild`: forgets cached failures; 0 if every one was cleared or
// had none, 1 if the store could not be reached, 2 on bad configuration.
int forget_failures(const std::string& config_file, const std::vector<std::string>& drvs) {
  try {
    auto store = store_from(config_file);
    if (!store) {
      say(paint("31", "cannot reach Redis: ") + store.error().message);
      return 1;
    }
    for (const auto& drv : drvs) {
      auto cleared = (*store)->clear_failed_build(drv);
      if (!cleared) {
        say(paint("31", "cannot clear " + drv + ": ") + cleared.error().message);
        return 1;
      }
      say(drv + (*cleared ? ": cached failure cleared; the next evaluation builds it" : ": no cached failure"));
    }
    return 0;
  } catch (const ConfigError& e) {
    say(paint("31", "bad configuration: ") + e.what());
    return 2;
  }
}

// --- flurry up ------------------------------------------------------------

void add_up_options(CLI::App& up, UpFlags& f) {
  up.add_option("--state-dir", f.state_dir, "where all data, logs, secrets and kept settings (forge flags, --set) live")
      ->capture_default_str();
  up.add_option("--bin-dir", f.bin_dir, "where the service binaries are")->capture_default_str();
  up.add_option("--port", f.port, "webhook-ingest port on 127.0.0.1 (0 = any)")->capture_default_str();
  up.add_option("--web-port", f.web_port,
                "web service (UI and API) port on 127.0.0.1, where status and check-run links point (0 = any)")
      ->capture_default_str();
  up.add_option("--example", f.example, "flake directory to push through the stack")->capture_default_str();
  up.add_flag("--no-example", f.no_example, "start the stack only");
  up.add_flag("--exit-when-done", f.exit_when_done, "stop after the example finished; exit 0 if it succeeded");
  up.add_option("--timeout", f.timeout_s, "seconds to wait for the example")->capture_default_str();
  for (const auto& [forge, example_url] : forges_with_example_urls()) {
    auto& flags = f.forges[forge];
    up.add_option("--" + forge + "-api-url", flags.api_url,
                  "post commit statuses to this " + forge + " API (e.g. " + example_url + ")");
    up.add_option("--" + forge + "-token-file", flags.token_file,
                  "file holding the token the reporter posts " + forge + " statuses with");
    if (forge != "github") continue;
    up.add_option("--github-app-id", flags.app_id, "post as this GitHub App (with --github-app-key-file, instead of a token)");
    up.add_option("--github-app-key-file", flags.app_key_file, "the GitHub App's private key (PEM)");
    up.add_flag("--github-checks", flags.checks, "post check runs instead of commit statuses (needs the GitHub App)");
  }
  up.add_option("--set", f.set,
                "section.key=value: a configuration key, the value as TOML (builder.slots=4, "
                "'web.public_url=\"https://ci.example.org\"'); kept for later starts")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  up.add_option("--unset", f.unset, "drop a kept setting: section.key, a forge flag (github-checks) or a forge's flags (github)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

// Names and values only: secrets live in files the values name.
void show_settings(const std::string& path, const up::KeptSettings& settings) {
  if (settings.empty()) return;
  say("kept settings apply (" + path + "; --unset NAME drops one):");
  for (const auto& [name, value] : settings) {
    std::cout << "  " << name << " = " << (text::ends_with(name, "-api-url") ? text::display_url(value) : value) << std::endl;
  }
}

// Sends the signed push webhook of `rev` in the example repository; returns
// its delivery id.
Result<std::string> send_example_push(stack::Stack& stack, const std::string& repo_dir, const std::string& rev) {
  auto body = stack::github_push_payload("local", "example", "file://" + repo_dir, "main", "main", std::string(40, '0'), rev);
  std::string delivery = "local-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  auto client = http::make_client();
  auto resp = client->send({.method = "POST",
                            .url = stack.webhook_url(),
                            .headers = {{"Content-Type", "application/json"},
                                        {"X-GitHub-Event", "push"},
                                        {"X-GitHub-Delivery", delivery},
                                        {"X-Hub-Signature-256", "sha256=" + crypto::hmac_sha256_hex(stack.webhook_secret(), body)}},
                            .body = body});
  if (!resp) return fail(resp.error());
  if (resp->status / 100 != 2) return fail(Error::rejected(std::to_string(resp->status) + " " + resp->body));
  say("sent a signed push webhook (delivery " + delivery + "): HTTP " + std::to_string(resp->status));
  return delivery;
}

// What pushing the example earned: the exit code, and whether `up` ends
// now (interrupted, or the example could not be run).
struct ExampleRun {
  int exit_code = 0;
  bool end_now = false;
};

// Pushes the example through the stack and prints its results as they land.
ExampleRun run_example(stack::Stack& stack, const UpFlags& f) {
  const std::string repo_dir = absolute_path(f.state_dir) + "/example-repo";
  auto rev = stack::commit_directory(f.example, repo_dir, "example");
  if (!rev) {
    say(paint("31", "could not prepare the example: ") + rev.error().message);
    return {1, true};
  }
  say("example repository " + repo_dir + " at " + rev->substr(0, 12));
  auto delivery = send_example_push(stack, repo_dir, *rev);
  if (!delivery) {
    say(paint("31", "webhook was not accepted: ") + delivery.error().message);
    return {1, true};
  }
  auto store = state::connect_redis({.host = "127.0.0.1", .port = stack.redis_port()});
  if (!store) {
    say(paint("31", "cannot read state: ") + store.error().message);
    return {1, true};
  }
  auto w = watch_eval(**store, state::eval_id_for_change("github:" + *delivery), stack.service_url("web"),
                      std::chrono::seconds(f.timeout_s));
  if (w.stopped) {
    say("stopping");
    return {130, true};
  }
  std::error_code ec;
  int narinfos = 0;
  for (const auto& e : fs::directory_iterator(stack.cache_dir(), ec)) narinfos += e.path().extension() == ".narinfo";
  say("binary cache file://" + stack.cache_dir() + " holds " + std::to_string(narinfos) + " store paths");
  return {w.finished && w.succeeded ? 0 : 1, false};
}

// Stops everything; `exit_code` unless a service did not stop cleanly.
int stop_stack(stack::Stack& stack, int exit_code) {
  auto unclean = stack.stop();
  for (const auto& u : unclean) say(paint("31", "unclean stop: ") + u);
  return unclean.empty() ? exit_code : 1;
}

// Starts the stack, runs the example, then keeps running until Ctrl-C
// (or stops, with --exit-when-done).
int run_stack(const UpFlags& f, const stack::StackOptions& opts, bool settings_kept) {
  const std::string state_dir = absolute_path(f.state_dir);
  stack::Stack stack(opts);
  say("state directory " + state_dir);
  if (auto r = stack.start(); !r) {
    say(paint("31", "could not start: ") + r.error().message);
    if (settings_kept) say("kept settings apply to every start; `--unset NAME` drops one");
    stack.stop();
    return 1;
  }
  say("nats-server, redis-server and " + std::to_string(stack::service_names().size()) + " services are up (logs in " + state_dir +
      "/logs)");
  const auto web = stack.service_url("web");
  say("web UI: " + web + " (API: " + web + "/api/evals/<eval>; token for rebuild and cancel in " + state_dir + "/secrets/api-token)");
  if (opts.public_url != web) say("status and check-run links point at " + opts.public_url);
  int exit_code = 0;
  if (!f.no_example) {
    auto example = run_example(stack, f);
    if (example.end_now) return stop_stack(stack, example.exit_code);
    exit_code = example.exit_code;
  }
  if (f.exit_when_done) return stop_stack(stack, exit_code);
  say("running. Point a GitHub webhook (push, JSON) at " + stack.webhook_url() + " with the secret in " + state_dir +
      "/secrets/webhook-secret. Ctrl-C stops everything.");
  std::set<std::string> reported;
  while (!interrupted(std::chrono::seconds(2))) {
    for (const auto& dead : stack.dead_children()) {
      if (reported.insert(dead).second) say(paint("31", dead + " exited; see " + stack.log_path(dead)));
    }
  }
  say("stopping");
  return stop_stack(stack, 0);
}

// `flurry up`: 2 on bad flags or kept settings (nothing started), else as
// run_stack.
int run_up(const UpFlags& f) {
  const auto path = up::settings_path(absolute_path(f.state_dir));
  auto kept = up::load_settings(path);
  std::vector<std::string> notes;
  auto settings = kept ? up::updated_settings(f, *kept, notes) : Result<up::KeptSettings>(fail(kept.error()));
  for (const auto& note : notes) say(note);
  auto opts = settings ? up::stack_options(f, *settings) : Result<stack::StackOptions>(fail(settings.error()));
  if (!opts) {
    std::cerr << "flurry: " << opts.error().message << "\n";
    if (kept && !kept->empty()) std::cerr << "flurry: kept settings are in " << path << " (`--unset NAME` drops one)\n";
    return 2;
  }
  if (*settings != *kept) {
    if (auto r = up::save_settings(path, *settings); !r) {
      std::cerr << "flurry: " << r.error().message << "\n";
      return 1;
    }
  }
  show_settings(path, *settings);
  for (const auto& [name, value] : opts->env) setenv(name.c_str(), value.c_str(), 1);
  // Signals are taken synchronously (sigtimedwait) by the main thread.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  log::init("flurry", log::Level::kWarn);
  http::init_threads(2);
  return run_stack(f, *opts, !settings->empty());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Flurry: Nix-native CI on one machine"};
  app.require_subcommand(1);
  auto* up_cmd = app.add_subcommand("up", "start the whole stack and run CI on the example flake");
  UpFlags up_flags;
  up_flags.bin_dir = default_bin_dir(argv[0]);
  add_up_options(*up_cmd, up_flags);
  auto* rebuild = app.add_subcommand(
      "rebuild", "clear the failed-build cache for derivations, so that the next evaluation builds them again");
  std::string config_file = ".state/flurry.toml";
  std::vector<std::string> drvs;
  rebuild->add_option("--config", config_file, "the services' configuration (its [redis] section is used)")->capture_default_str();
  rebuild->add_option("drv", drvs, "derivation paths (/nix/store/...drv)")->required();
  auto* log_cmd = app.add_subcommand("log", "print a job's build log (while it builds too, from any host)");
  std::string log_job;
  bool follow = false;
  log_cmd->add_option("--config", config_file, "the services' configuration (its [redis] section is used)")->capture_default_str();
  log_cmd->add_option("job", log_job, "the job id")->required();
  log_cmd->add_flag("-f,--follow", follow, "keep printing until the job ends");
  CLI11_PARSE(app, argc, argv);
  if (*rebuild) return forget_failures(config_file, drvs);
  if (*log_cmd) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    return show_log(config_file, log_job, follow);
  }
  return run_up(up_flags);
}
