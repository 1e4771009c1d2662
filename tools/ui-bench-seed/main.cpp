// flurry-ui-bench-seed: fills a Redis with what a busy Flurry has after
// months, through the production adapters (StateStore, Catalog), for
// bench/ui_bench.py: `--evals` evals of `--jobs` jobs each over
// `--projects` projects (branches, tags and pull requests), two evals of
// `--big-jobs` jobs on the first project's main branch (the newer one is
// compared with the older), and one job of the newer with a
// `--log-mb` MiB log. Prints one JSON line naming what it made.
// Used by bench/ui_bench.py; not part of the services.
//
//   flurry-ui-bench-seed --redis-port P [--evals 10000] [--jobs 9] [--big-jobs 10000] [--log-mb 50] [--projects 20]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "flurry/messages/job_state.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"

using namespace flurry;
using json = nlohmann::json;

namespace {

const std::string kSystem = "x86_64-linux";
constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

struct Seeder {
  state::StateStore& store;
  state::Catalog& catalog;
  std::mt19937 rng{42};
  std::size_t jobs_made = 0;

  static void must(const Result<void>& r, const char* what) {
    if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message);
  }
  template <class T>
  static T must(Result<T> r, const char* what) {
    if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message);
    return std::move(*r);
  }

  static msg::Repo repo(int project) {
    msg::Repo r;
    r.forge = "github";
    r.owner = "bench";
    r.name = "project-" + std::to_string(project);
    r.clone_url = "https://github.com/bench/" + r.name + ".git";
    r.html_url = "https://github.com/bench/" + r.name;
    r.default_branch = "main";
    return r;
  }

  // The eval's ref: most go to main, the rest to a few branches, tags and
  // pull requests.
  static state::EvalFiling filing(const std::string& eval_id, int project, int i, std::int64_t created_ms) {
    state::EvalFiling f{eval_id, repo(project), "refs/heads/main", "branch", "main", 0, "", created_ms};
    if (i % 10 == 3) {
      const int n = 1 + (i / 10) % 40;
      f.ref = "refs/pull/" + std::to_string(n) + "/head";
      f.kind = "pull_request";
      f.name = "#" + std::to_string(n);
      f.number = n;
      f.title = "Pull request number " + std::to_string(n);
    } else if (i % 10 == 6) {
      f.name = "feature/topic-" + std::to_string((i / 10) % 25);
      f.ref = "refs/heads/" + f.name;
    } else if (i % 97 == 0) {
      f.name = "v1." + std::to_string(i / 97);
      f.ref = "refs/tags/" + f.name;
      f.kind = "tag";
    }
    return f;
  }

  static std::string hex40(std::mt19937& rng) {
    static const char* digits = "0123456789abcdef";
    std::string s(40, '0');
    for (auto& c : s) c = digits[rng() % 16];
    return s;
  }

  void create(const state::EvalFiling& f) {
    state::EvalRecord e;
    e.id = f.eval_id;
    e.change_id = "bench:" + f.eval_id;
    e.repo = f.repo;
    e.ref = f.ref;
    if (f.kind == "branch") e.branch = f.name;
    if (f.kind == "tag") e.tag = f.name;
    e.rev = hex40(rng);
    e.created_ms = f.created_ms;
    must(store.create_eval(e), "create_eval");
    must(catalog.file_eval(f), "file_eval");
  }

  state::JobSpec spec(const std::string& eval_id, const std::string& name) {
    state::JobSpec j;
    j.attr = "checks." + kSystem + "." + name;
    j.id = state::job_id_for(eval_id, j.attr);
    j.name = name;
    j.system = kSystem;
    j.drv_path = "/nix/store/" + hex40(rng).substr(0, 32) + "-" + name + ".drv";
    j.outputs = {{"out", "/nix/store/" + hex40(rng).substr(0, 32) + "-" + name}};
    j.cache_status = "notBuilt";
    return j;
  }

  // An everyday eval: most jobs were built before (skipped), one is built
  // now and fails one time in five, one attribute fails to evaluate one
  // time in twenty.
  void small_eval(const state::EvalFiling& f, int jobs, std::int64_t now_ms) {
    create(f);
    std::vector<state::JobSpec> specs;
    for (int k = 0; k < jobs; ++k) {
      auto j = spec(f.eval_id, "check-" + std::to_string(k));
      if (k > 0) {
        j.state = msg::JobState::kSkipped;
        j.cache_status = "local";
      }
      specs.push_back(std::move(j));
    }
    if (jobs > 1 && rng() % 20 == 0) {
      specs.back().state = msg::JobState::kEvalFailed;
      specs.back().drv_path.clear();
      specs.back().error = "error: attribute 'missing' missing";
    }
    must(store.add_jobs(f.eval_id, specs, now_ms), "add_jobs");
    must(store.start_job(specs[0].id, now_ms), "start_job");
    const bool fails = rng() % 5 == 0;
    must(store.finish_job(specs[0].id, fails ? msg::JobState::kFailed : msg::JobState::kSucceeded,
                          fails ? "builder failed with exit code 1" : "", now_ms + 1000 + rng() % 60000),
         "finish_job");
    jobs_made += specs.size();
  }

  // A big eval: `jobs` jobs in batches; every 50th waits for the one
  // before it; `failing_every` of them fail (their dependents end
  // dependency_failed), the rest succeed after builds of varied length.
  std::vector<std::string> big_eval(const state::EvalFiling& f, int jobs, int failing_every, std::int64_t now_ms) {
    create(f);
    std::vector<std::string> ids;
    std::vector<state::JobSpec> batch;
    for (int k = 0; k < jobs; ++k) {
      auto j = spec(f.eval_id, "pkg-" + std::to_string(k));
      if (k % 50 == 1) j.deps = {ids.back()};
      ids.push_back(j.id);
      batch.push_back(std::move(j));
      if (batch.size() == 1000 || k + 1 == jobs) {
        must(store.add_jobs(f.eval_id, batch, now_ms, k + 1 == jobs), "add_jobs");
        batch.clear();
      }
    }
    for (int k = 0; k < jobs; ++k) {
      auto job = must(store.get_job(ids[k]), "get_job");
      if (!job || msg::is_terminal(job->state)) continue;
      must(store.start_job(ids[k], now_ms), "start_job");
      const bool fails = failing_every > 0 && k % failing_every == 0;
      must(store.finish_job(ids[k], fails ? msg::JobState::kFailed : msg::JobState::kSucceeded,
                            fails ? "builder failed with exit code 2" : "", now_ms + 500 + rng() % 600000),
           "finish_job");
    }
    jobs_made += ids.size();
    return ids;
  }

  // `mib` MiB of build output, ANSI-coloured here and there, an error
  // line every 100,000 lines.
  void big_log(const std::string& job_id, int mib) {
    const std::size_t want = static_cast<std::size_t>(mib) * 1024 * 1024;
    std::string chunk;
    std::size_t written = 0;
    for (long line = 1; written < want; ++line) {
      if (line % 100000 == 0) {
        chunk += "pkg> error: test " + std::to_string(line) + " failed: expected 4, got 5\n";
      } else if (line % 7 == 0) {
        chunk += "pkg> \x1b[32mPASS\x1b[0m tests/unit/case_" + std::to_string(line) + ".c (0." + std::to_string(line % 100) + " s)\n";
      } else {
        chunk += "pkg> building src/module_" + std::to_string(line % 977) + "/file_" + std::to_string(line) +
                 ".c -O2 -Wall -fPIC -o build/file_" + std::to_string(line) + ".o\n";
      }
      if (chunk.size() >= 1024 * 1024) {
        must(store.append_log(job_id, chunk, want + 1024 * 1024), "append_log");
        written += chunk.size();
        chunk.clear();
      }
    }
    if (!chunk.empty()) must(store.append_log(job_id, chunk, want + 1024 * 1024), "append_log");
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"flurry-ui-bench-seed"};
  int port = 0, evals = 10000, jobs = 9, big_jobs = 10000, log_mb = 50, projects = 20;
  app.add_option("--redis-port", port)->required();
  app.add_option("--evals", evals);
  app.add_option("--jobs", jobs);
  app.add_option("--big-jobs", big_jobs);
  app.add_option("--log-mb", log_mb);
  app.add_option("--projects", projects);
  CLI11_PARSE(app, argc, argv);

  try {
    auto store = Seeder::must(state::connect_redis({.host = "127.0.0.1", .port = port}), "connect");
    auto catalog = Seeder::must(state::connect_redis_catalog({.host = "127.0.0.1", .port = port}), "connect");
    Seeder s{*store, *catalog};
    const auto started = std::chrono::steady_clock::now();
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count();
    // Spread over the last 90 days, oldest first; the big evals come last.
    const std::int64_t first = now - 90 * kDayMs;
    const std::int64_t step = 90 * kDayMs / (evals + 2);
    for (int i = 0; i < evals; ++i) {
      const auto id = state::eval_id_for_change("bench:" + std::to_string(i));
      s.small_eval(Seeder::filing(id, i % projects, i, first + i * step), jobs, first + i * step);
    }
    const auto base = state::eval_id_for_change("bench:big-base");
    s.big_eval(Seeder::filing(base, 0, 0, now - 2 * step), big_jobs, 400, now - 2 * step);
    const auto big = state::eval_id_for_change("bench:big");
    const auto ids = s.big_eval(Seeder::filing(big, 0, 0, now - step), big_jobs, 250, now - step);
    const auto log_job = ids[ids.size() / 2];
    s.big_log(log_job, log_mb);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << json{{"evals", evals + 2},
                      {"jobs", s.jobs_made},
                      {"project", {{"forge", "github"}, {"owner", "bench"}, {"repo", "project-0"}}},
                      {"small_eval", state::eval_id_for_change("bench:" + std::to_string(evals - 1))},
                      {"big_eval", big},
                      {"big_base", base},
                      {"log_job", log_job},
                      {"log_bytes", static_cast<std::size_t>(log_mb) * 1024 * 1024},
                      {"seconds", seconds}}
                     .dump()
              << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "flurry-ui-bench-seed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
