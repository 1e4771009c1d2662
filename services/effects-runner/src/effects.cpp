#include "effects.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>

#include "flurry/core/config.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/repo/repo_config.hpp"

namespace flurry::effects {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

EffectsOutcome retry(const Error& e, std::uint64_t delivered) {
  EffectsOutcome o;
  o.result = "retry";
  o.disposition = bus::retry_later(e, delivered);
  return o;
}

msg::StatusEvent effects_status(const msg::EvalFinished& eval, msg::StatusState st, const std::string& description,
                                std::int64_t at_us, const EffectsConfig& cfg) {
  auto url = cfg.public_url.empty() ? "" : cfg.public_url + "/evals/" + eval.eval_id + "/effects";
  return pipeline::make_status(eval.eval_id, eval.repo, eval.rev, std::string(pipeline::kEffectsContext), st, description,
                               at_us, url);
}

// Registers every string in a secrets document for redaction.
void register_values(const json& j) {
  if (j.is_string()) log::register_secret(j.get<std::string>());
  if (j.is_object() || j.is_array()) {
    for (const auto& v : j) register_values(v);
  }
}

Result<std::string> write_secrets(const EffectsConfig& cfg, const msg::Repo& repo, const std::string& dir) {
  json secrets = json::object();
  auto file = secrets_file_for(cfg, repo);
  if (!file.empty()) {
    auto text = read_file(file);
    if (!text) return fail(Error::rejected("cannot read secrets file " + file));
    secrets = json::parse(*text, nullptr, false);
    if (!secrets.is_object()) return fail(Error::rejected("secrets file " + file + " is not a JSON object"));
  }
  register_values(secrets);
  // hercules-ci-effects expects this one; effects here get no real token.
  if (!secrets.contains("hercules-ci")) secrets["hercules-ci"] = {{"data", {{"token", "flurry-has-no-hercules-token"}}}};
  auto path = dir + "/secrets.json";
  {
    std::ofstream out(path, std::ios::trunc);
    out << secrets.dump();
    if (!out) return fail(Error::transient("cannot write " + path));
  }
  ::chmod(path.c_str(), 0600);
  return path;
}

}  // namespace

bool effects_allowed(const msg::EvalFinished& eval, const std::vector<std::string>& extra_branches, bool pull_requests) {
  if (eval.state != "succeeded" || !eval.tag.empty()) return false;
  if (repo::is_pull_request_ref(eval.ref)) return pull_requests;
  if (eval.branch.empty()) return false;
  return eval.branch == eval.repo.default_branch || repo::branch_matches(eval.branch, extra_branches);
}

std::string herculesci_args_json(const msg::EvalFinished& e) {
  json repo = {{"name", e.repo.name},
               {"owner", e.repo.owner},
               {"branch", e.branch.empty() ? json(nullptr) : json(e.branch)},
               {"ref", e.ref},
               {"tag", e.tag.empty() ? json(nullptr) : json(e.tag)},
               {"rev", e.rev},
               {"shortRev", e.rev.substr(0, 7)},
               {"remoteHttpUrl", e.repo.html_url.empty() ? json(nullptr) : json(e.repo.html_url)}};
  json args = repo;
  args["primaryRepo"] = repo;
  return args.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string list_effects_expression(const std::string& args_json) {
  return "h: let args = builtins.fromJSON " + text::nix_string_literal(args_json) +
         "; v = if builtins.isFunction h then h args else h; "
         "in builtins.mapAttrs (job: j: builtins.mapAttrs (name: e: (e.run or e).drvPath) "
         "((j.outputs or {}).effects or {})) (v.onPush or {})";
}

std::string secrets_file_for(const EffectsConfig& cfg, const msg::Repo& repo) {
  auto exact = cfg.secrets.find(repo.forge + ":" + repo.owner + "/" + repo.name);
  if (exact != cfg.secrets.end()) return exact->second;
  auto owner = cfg.secrets.find(repo.forge + ":" + repo.owner + "/*");
  return owner == cfg.secrets.end() ? std::string() : owner->second;
}

std::vector<std::string> sandbox_argv(const EffectsConfig& cfg, const nix::Derivation& drv, const std::string& build_dir,
                                      const std::string& secrets_path) {
  std::vector<std::string> a = {cfg.bwrap, "--unshare-all", "--share-net", "--die-with-parent", "--uid", "0", "--gid", "0",
                                "--ro-bind", "/nix/store", "/nix/store", "--proc", "/proc", "--dev", "/dev",
                                "--tmpfs", "/tmp", "--bind", build_dir, "/build", "--chdir", "/build",
                                "--ro-bind", secrets_path, "/run/secrets.json"};
  for (const auto& p : cfg.extra_sandbox_paths) a.insert(a.end(), {"--ro-bind-try", p, p});
  a.push_back("--clearenv");
  std::map<std::string, std::string> env = drv.env;
  for (const auto& [name, _] : drv.outputs) env[name] = "/build/outputs/" + name;
  env["HOME"] = "/build";
  env["TMPDIR"] = env["TMP"] = env["TEMP"] = env["TEMPDIR"] = "/tmp";
  env["NIX_BUILD_TOP"] = "/build";
  env["IN_HERCULES_CI_EFFECT"] = "true";
  env["HERCULES_CI_SECRETS_JSON"] = "/run/secrets.json";
  for (const auto& [k, v] : env) a.insert(a.end(), {"--setenv", k, v});
  a.push_back("--");
  a.push_back(drv.builder);
  a.insert(a.end(), drv.args.begin(), drv.args.end());
  return a;
}

namespace {

// flurry/effects once every effect ended: "2 effects succeeded", or the
// first failure by name.
std::string ended_description(std::size_t effects, const std::vector<std::string>& failed_names) {
  if (!failed_names.empty()) return "effect " + failed_names.front() + " failed";
  return std::to_string(effects) + (effects == 1 ? " effect succeeded" : " effects succeeded");
}

}  // namespace

EffectsOutcome handle_eval_finished(const msg::EvalFinished& eval, std::uint64_t num_delivered, EffectsPorts ports,
                                    const EffectsConfig& cfg) {
  EffectsOutcome o;
  auto not_allowed = [&] {
    o.result = "not_allowed";
    o.disposition = bus::Disposition::ack();
    return o;
  };
  std::string mirror = cfg.work_dir + "/repos/" + text::safe_file_name(eval.repo.forge) + "/" +
                       text::safe_file_name(eval.repo.owner) + "/" + text::safe_file_name(eval.repo.name) + ".git";
  std::string auth;
  if (ports.clone_auth) {
    auto header = ports.clone_auth(eval.repo, eval.repo.clone_url);
    if (!header) return retry(header.error(), num_delivered);
    auth = *header;
  }
  if (!effects_allowed(eval)) {
    // Another branch or a pull request may run effects only if the default
    // branch's own config says so; the pushed commit cannot grant itself
    // permission.
    if (!effects_allowed(eval, {"*"}, true) || eval.repo.default_branch.empty()) return not_allowed();
    auto head = ports.git.fetch_branch_head(eval.repo.clone_url, eval.repo.default_branch, mirror, auth);
    if (!head) return head.error().code == ErrorCode::kTransient ? retry(head.error(), num_delivered) : not_allowed();
    auto rules = repo::load_repo_config(ports.git, mirror, *head, {"checks"});
    if (!rules) {
      if (rules.error().code == ErrorCode::kTransient) return retry(rules.error(), num_delivered);
      log::warn("effects.bad_default_branch_config", rules.error().message, {{"eval_id", eval.eval_id}});
      return not_allowed();
    }
    if (!effects_allowed(eval, rules->effects_branches, rules->effects_on_pull_requests)) return not_allowed();
  }
  auto flake = ports.git.fetch({eval.repo.clone_url, eval.ref, eval.rev, mirror, auth});
  if (!flake) return retry(flake.error(), num_delivered);

  auto listed = ports.nix.eval_json(*flake, {"herculesCI"}, list_effects_expression(herculesci_args_json(eval)), std::chrono::minutes(10));
  if (!listed) {
    if (listed.error().code == ErrorCode::kTransient) return retry(listed.error(), num_delivered);
    if (listed.error().message.find("does not provide attribute") != std::string::npos) {
      o.result = "none";
      o.disposition = bus::Disposition::ack();
      return o;
    }
    auto s = effects_status(eval, msg::StatusState::kFailure, "Evaluating effects failed: " + listed.error().message,
                            ports.clock.now_us(), cfg);
    if (auto r = pipeline::publish_status(ports.bus, s); !r) return retry(r.error(), num_delivered);
    o.result = "failed";
    o.disposition = bus::Disposition::ack();
    return o;
  }
  json tree = json::parse(*listed, nullptr, false);
  std::vector<std::pair<std::string, std::string>> effects;  // name, drv
  if (tree.is_object()) {
    for (const auto& [job, fx] : tree.items()) {
      if (!fx.is_object()) continue;
      for (const auto& [name, drv] : fx.items()) {
        if (drv.is_string()) effects.emplace_back(job + "." + name, drv.get<std::string>());
      }
    }
  }
  std::sort(effects.begin(), effects.end());
  if (effects.empty()) {
    o.result = "none";
    o.disposition = bus::Disposition::ack();
    return o;
  }

  // A redelivery after every effect ran: republish the result only. Every
  // effect listed must have its end recorded: records a store lost (a Redis
  // restarted without its last writes) must not pass for a finished run.
  auto recorded = ports.state.list_effects(eval.eval_id);
  if (!recorded) return retry(recorded.error(), num_delivered);
  std::map<std::string, const state::EffectRecord*> by_name;
  for (const auto& e : *recorded) by_name[e.name] = &e;
  const bool all_done = !recorded->empty() && std::all_of(effects.begin(), effects.end(), [&](const auto& fx) {
    auto it = by_name.find(fx.first);
    return it != by_name.end() && it->second->state != "running";
  });
  if (all_done) {
    std::vector<std::string> failed_names;
    std::int64_t at = 0;
    for (const auto& [name, _] : effects) {
      if (by_name[name]->state == "failed") failed_names.push_back(name);
      at = std::max(at, by_name[name]->finished_ms * 1000 + 1);
    }
    auto st = failed_names.empty() ? msg::StatusState::kSuccess : msg::StatusState::kFailure;
    auto desc = ended_description(effects.size(), failed_names);
    if (auto r = pipeline::publish_status(ports.bus, effects_status(eval, st, desc, at, cfg)); !r) return retry(r.error(), num_delivered);
    o.result = "replayed";
    o.effects = static_cast<int>(effects.size());
    o.failed = static_cast<int>(failed_names.size());
    o.disposition = bus::Disposition::ack();
    return o;
  }

  auto pending = effects_status(eval, msg::StatusState::kPending, "Running " + std::to_string(effects.size()) + " effect(s)",
                                ports.clock.now_us(), cfg);
  if (auto r = pipeline::publish_status(ports.bus, pending); !r) return retry(r.error(), num_delivered);

  std::vector<std::string> failed_names;
  for (const auto& [name, drv_path] : effects) {
    if (auto r = ports.state.put_effect({eval.eval_id, name, "running", "", 0}); !r) return retry(r.error(), num_delivered);
    std::string log;
    bool ok = false;
    auto drv = ports.nix.show_derivation(drv_path);
    std::string dir = cfg.work_dir + "/runs/" + text::safe_file_name(eval.eval_id) + "/" + text::safe_file_name(name);
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir + "/build/outputs", ec);
    if (!drv) {
      log = "cannot read the effect's derivation: " + drv.error().message + "\n";
    } else if (auto inputs = ports.nix.realise(drv->input_drvs); !inputs) {
      log = "cannot build the effect's inputs: " + inputs.error().message + "\n";
    } else if (auto secrets = write_secrets(cfg, eval.repo, dir); !secrets) {
      log = secrets.error().message + "\n";
    } else {
      ProcessSpec spec;
      if (cfg.sandbox) {
        spec.argv = sandbox_argv(cfg, *drv, dir + "/build", *secrets);
      } else {
        spec.argv = {drv->builder};
        spec.argv.insert(spec.argv.end(), drv->args.begin(), drv->args.end());
        spec.clear_env = true;
        spec.env = drv->env;
        for (const auto& [out, _] : drv->outputs) spec.env[out] = dir + "/build/outputs/" + out;
        spec.env["IN_HERCULES_CI_EFFECT"] = "true";
        spec.env["HERCULES_CI_SECRETS_JSON"] = *secrets;
        spec.env["HOME"] = dir + "/build";
        spec.cwd = dir + "/build";
      }
      spec.timeout = cfg.timeout;
      spec.max_capture = cfg.log_cap_bytes;
      // One log in arrival order: both streams go to the same buffer.
      std::string merged;
      std::mutex mu;
      spec.on_stdout = [&](std::string_view c) {
        std::lock_guard lock(mu);
        merged.append(c);
      };
      spec.on_stderr = spec.on_stdout;
      auto run = ports.processes.run(spec);
      if (!run) {
        log = "cannot run the effect: " + run.error().message + "\n";
      } else {
        log = merged;
        ok = run->ok();
        if (!ok) log += "--- flurry: effect " + run->describe() + "\n";
      }
    }
    fs::remove_all(dir, ec);  // the secrets file goes with it
    if (log.size() > cfg.log_cap_bytes) log = log.substr(log.size() - cfg.log_cap_bytes);
    state::EffectRecord rec{eval.eval_id, name, ok ? "succeeded" : "failed", log::redact(log), ports.clock.now_ms()};
    if (auto r = ports.state.put_effect(rec); !r) return retry(r.error(), num_delivered);
    log::info(ok ? "effect.succeeded" : "effect.failed", name, {{"eval_id", eval.eval_id}, {"effect", name}});
    if (!ok) failed_names.push_back(name);
  }
  o.effects = static_cast<int>(effects.size());
  o.failed = static_cast<int>(failed_names.size());
  auto st = failed_names.empty() ? msg::StatusState::kSuccess : msg::StatusState::kFailure;
  auto desc = ended_description(effects.size(), failed_names);
  if (auto r = pipeline::publish_status(ports.bus, effects_status(eval, st, desc, ports.clock.now_us(), cfg)); !r) {
    return retry(r.error(), num_delivered);
  }
  o.result = failed_names.empty() ? "succeeded" : "failed";
  o.disposition = bus::Disposition::ack();
  return o;
}

}  // namespace flurry::effects
