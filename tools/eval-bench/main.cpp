// flurry-eval-bench: runs the evaluator's nix work for one flake attribute
// set (evaluate every attribute with results streamed, read each batch's
// derivation graph and output validity meanwhile, plan the jobs) and
// prints what it took as one JSON line.
// Used by bench/eval_bench.py; not part of the services.
//
//   flurry-eval-bench <flake-ref> <attr.path> [--engine cli|nix-eval-jobs] [--workers N] [--max-memory-mib M] [--queries on|off]
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "evaluate.hpp"
#include "flurry/core/text.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/nix/eval_jobs_runner.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: flurry-eval-bench <flake-ref> <attr.path> [--engine cli|nix-eval-jobs] [--workers N] [--max-memory-mib M] [--queries on|off]\n");
    return 2;
  }
  std::string ref = argv[1];
  auto path = text::split(argv[2], '.');
  std::string engine = "cli";
  int workers = 2;
  std::size_t max_memory_mib = 2048;
  bool queries = true;  // off: evaluation only, no store queries (to see what they cost)
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--engine") engine = argv[i + 1];
    if (k == "--workers") workers = std::stoi(argv[i + 1]);
    if (k == "--max-memory-mib") max_memory_mib = std::stoul(argv[i + 1]);
    if (k == "--queries") queries = std::string(argv[i + 1]) != "off";
  }
  PosixProcessRunner runner;
  nix::CliNixRunner cli(runner, {.eval_workers = workers, .eval_max_memory_mib = max_memory_mib});
  nix::EvalJobsRunner nej(runner, cli, {.workers = workers, .max_memory_mib = static_cast<int>(max_memory_mib)});
  nix::NixRunner& nix = engine == "nix-eval-jobs" ? static_cast<nix::NixRunner&>(nej) : cli;

  // As the evaluator does: each streamed batch's derivation graph and
  // output validity are read while evaluation goes on.
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  std::vector<nix::AttrResult> attrs;
  nix::DerivationGraph graph;
  evaluator::StoreFacts facts;
  int batches = 0;
  double first_batch_seconds = -1;
  nix::EvalRequest req{ref, path, false, std::chrono::hours(2)};
  req.on_attrs = [&](std::vector<nix::AttrResult> batch) -> Result<void> {
    if (first_batch_seconds < 0) first_batch_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    ++batches;
    if (!queries) {
      for (auto& a : batch) attrs.push_back(std::move(a));
      return {};
    }
    std::vector<std::string> drvs, outs;
    for (const auto& a : batch) {
      if (!a.ok()) continue;
      drvs.push_back(a.drv_path);
      for (const auto& [_, p] : a.outputs) outs.push_back(p);
    }
    auto g = nix.derivation_graph(drvs);
    if (!g) return fail(g.error());
    graph.merge(*g);
    auto inv = nix.invalid_paths(outs);
    if (!inv) return fail(inv.error());
    facts.invalid.insert(inv->begin(), inv->end());
    for (auto& a : batch) attrs.push_back(std::move(a));
    return {};
  };
  auto evaluated = nix.eval_attrs(req);
  if (!evaluated) {
    std::fprintf(stderr, "evaluation failed: %s\n", evaluated.error().message.c_str());
    return 1;
  }
  int errors = 0;
  for (const auto& a : attrs) errors += !a.ok();
  auto jobs = evaluator::plan_jobs("bench", attrs, graph, facts);
  auto t1 = clock::now();
  std::printf(
      "{\"engine\":\"%s\",\"workers\":%d,\"attributes\":%zu,\"eval_errors\":%d,\"batches\":%d,\"first_batch_seconds\":%.3f,"
      "\"total_seconds\":%.3f,\"processes\":%d,\"memory_restarts\":%d}\n",
      engine.c_str(), workers, jobs.size(), errors, batches, first_batch_seconds, std::chrono::duration<double>(t1 - t0).count(),
      evaluated->processes, evaluated->memory_restarts);
  return 0;
}
