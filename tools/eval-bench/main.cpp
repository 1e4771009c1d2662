// flurry-eval-bench: runs the evaluator's nix work for one flake attribute
// set (evaluate every attribute, read the derivation graph, check which
// outputs exist, plan the jobs) and prints what it took as one JSON line.
// Used by bench/eval_bench.py; not part of the services.
//
//   flurry-eval-bench <flake-ref> <attr.path> [--engine cli|nix-eval-jobs] [--workers N]
#include <chrono>
#include <cstdio>
#include <set>
#include <string>

#include "evaluate.hpp"
#include "flurry/core/text.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/nix/eval_jobs_runner.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: flurry-eval-bench <flake-ref> <attr.path> [--engine cli|nix-eval-jobs] [--workers N]\n");
    return 2;
  }
  std::string ref = argv[1];
  auto path = text::split(argv[2], '.');
  std::string engine = "cli";
  int workers = 2;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--engine") engine = argv[i + 1];
    if (k == "--workers") workers = std::stoi(argv[i + 1]);
  }
  PosixProcessRunner runner;
  nix::CliNixRunner cli(runner, {.eval_workers = workers});
  nix::EvalJobsRunner nej(runner, cli, {.workers = workers});
  nix::NixRunner& nix = engine == "nix-eval-jobs" ? static_cast<nix::NixRunner&>(nej) : cli;

  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  auto evaluated = nix.eval_attrs({ref, path, false, std::chrono::hours(2)});
  if (!evaluated) {
    std::fprintf(stderr, "evaluation failed: %s\n", evaluated.error().message.c_str());
    return 1;
  }
  auto t1 = clock::now();
  std::vector<std::string> drvs, outs;
  int errors = 0;
  for (const auto& a : evaluated->attrs) {
    if (!a.ok()) {
      ++errors;
      continue;
    }
    drvs.push_back(a.drv_path);
    for (const auto& [_, p] : a.outputs) outs.push_back(p);
  }
  auto graph = nix.derivation_graph(drvs);
  auto invalid = nix.invalid_paths(outs);
  if (!graph || !invalid) {
    std::fprintf(stderr, "store queries failed\n");
    return 1;
  }
  auto jobs = evaluator::plan_jobs("bench", evaluated->attrs, *graph, std::set<std::string>(invalid->begin(), invalid->end()));
  auto t2 = clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("{\"engine\":\"%s\",\"attributes\":%zu,\"eval_errors\":%d,\"eval_seconds\":%.3f,\"plan_seconds\":%.3f,\"total_seconds\":%.3f}\n",
              engine.c_str(), jobs.size(), errors, secs(t0, t1), secs(t1, t2), secs(t0, t2));
  return 0;
}
