// flurry-dispatch-bench: one eval of N jobs in a DAG through real NATS and
// Redis and the builder's own handler, with a build runner that succeeds
// at once, so only dispatch is measured. Prints one JSON line: jobs/s,
// ready-to-started latency (p50, p99) and Redis commands per job.
// Used by bench/dispatch_bench.py; not part of the services.
//
//   flurry-dispatch-bench --nats URL --redis-port P --jobs N --shape wide|deep|mixed [--slots K]
#include <hiredis/hiredis.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "build.hpp"
#include "flurry/bus/nats_bus.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/nix/testing/fake_nix_runner.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/redis_store.hpp"

using namespace flurry;

namespace {

// Total commands the Redis server has processed.
long long redis_commands(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) return -1;
  auto* r = static_cast<redisReply*>(redisCommand(c, "INFO stats"));
  long long n = -1;
  if (r && r->type == REDIS_REPLY_STRING) {
    std::string s(r->str, r->len);
    auto at = s.find("total_commands_processed:");
    if (at != std::string::npos) n = std::stoll(s.substr(at + 25));
  }
  if (r) freeReplyObject(r);
  redisFree(c);
  return n;
}

// wide: no edges; deep: chains of 100; mixed: layers of 1000, each job
// waiting for two jobs of the layer before.
std::vector<state::JobSpec> dag(const std::string& eval_id, int n, const std::string& shape) {
  std::vector<state::JobSpec> jobs;
  std::mt19937 rng(42);
  for (int i = 0; i < n; ++i) {
    state::JobSpec j;
    j.id = eval_id + "-" + std::to_string(i);
    j.attr = "checks.x86_64-linux.j" + std::to_string(i);
    j.drv_path = "/nix/store/" + eval_id + "-" + std::to_string(i) + ".drv";
    j.system = "x86_64-linux";
    j.outputs = {{"out", "/nix/store/" + eval_id + "-" + std::to_string(i)}};
    if (shape == "deep" && i % 100 != 0) j.deps = {jobs[i - 1].id};
    if (shape == "mixed" && i >= 1000) {
      const int layer = i / 1000;
      std::uniform_int_distribution<int> pick((layer - 1) * 1000, layer * 1000 - 1);
      j.deps = {jobs[pick(rng)].id, jobs[pick(rng)].id};
      if (j.deps[0] == j.deps[1]) j.deps.pop_back();
    }
    jobs.push_back(std::move(j));
  }
  return jobs;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // as every service does (service::run)
  std::string nats_url = "nats://127.0.0.1:4222", shape = "wide";
  int redis_port = 6379, n = 10000, slots = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--nats") nats_url = v;
    if (k == "--redis-port") redis_port = std::stoi(v);
    if (k == "--jobs") n = std::stoi(v);
    if (k == "--shape") shape = v;
    if (k == "--slots") slots = std::stoi(v);
  }
  auto bus = bus::connect_nats({.url = nats_url});
  auto store = state::connect_redis({.host = "127.0.0.1", .port = redis_port});
  if (!bus || !store) {
    std::fprintf(stderr, "cannot connect: %s\n", !bus ? bus.error().message.c_str() : store.error().message.c_str());
    return 1;
  }
  SystemClock clock;
  const std::string eval_id = "bench-" + shape + "-" + std::to_string(n) + "-" + std::to_string(clock.now_ms());
  state::EvalRecord e;
  e.id = eval_id;
  e.repo = {"github", "bench", "dag", "file:///x", "", "main"};
  e.rev = std::string(40, 'a');
  e.created_ms = clock.now_ms();
  if (!*(*store)->create_eval(e)) return 1;
  auto jobs = dag(eval_id, n, shape);
  std::map<std::string, const state::JobSpec*> by_id;
  for (const auto& j : jobs) by_id[j.id] = &j;

  const long long commands_before = redis_commands(redis_port);
  const auto t0 = std::chrono::steady_clock::now();
  const auto t0_ms = clock.now_ms();
  // Recorded in batches of 10,000 as the evaluator streams them; roots
  // are released (published) as each batch lands.
  for (std::size_t start = 0; start < jobs.size(); start += 10000) {
    std::vector<state::JobSpec> batch(jobs.begin() + static_cast<long>(start),
                                      jobs.begin() + static_cast<long>(std::min(jobs.size(), start + 10000)));
    const bool last = start + 10000 >= jobs.size();
    auto t = (*store)->add_jobs(eval_id, batch, clock.now_ms(), last);
    if (!t) {
      std::fprintf(stderr, "add_jobs: %s\n", t.error().message.c_str());
      return 1;
    }
    if (auto r = pipeline::publish_transition({**bus, **store}, eval_id, *t, {}); !r) {
      std::fprintf(stderr, "publish: %s\n", r.error().message.c_str());
      return 1;
    }
  }

  nix::testing::FakeNixRunner nix;  // every build succeeds at once
  builder::BuilderConfig cfg;
  std::atomic<bool> stop{false};
  bus::ConsumerSpec spec{.stream = std::string(subjects::kBuildsStream),
                         .durable = "builder-" + subjects::token("x86_64-linux"),
                         .filter_subject = subjects::build("x86_64-linux"),
                         .max_deliver = 3,
                         .ack_wait = std::chrono::seconds(60),
                         .concurrency = slots};
  std::thread consumer([&] {
    auto r = (*bus)->consume(spec,
                             [&](const bus::Delivery& d) {
                               auto req = msg::decode_build_request(d.data);
                               if (!req) return bus::Disposition::ack();
                               return builder::handle_build_request(*req, {d.num_delivered, 3}, {**store, **bus, nix, clock}, cfg)
                                   .disposition;
                             },
                             stop);
    if (!r) std::fprintf(stderr, "consume: %s\n", r.error().message.c_str());
  });
  while (true) {
    auto ev = (*store)->get_eval(eval_id);
    if (ev && ev->has_value() && (**ev).state != state::EvalState::kBuilding && (**ev).state != state::EvalState::kEvaluating) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  consumer.join();
  const long long commands_after = redis_commands(redis_port);

  // Ready: when the last dependency finished (roots: the start). Started:
  // the job's own start time.
  auto recs = (*store)->list_jobs(eval_id);
  if (!recs) return 1;
  std::map<std::string, std::int64_t> finished;
  for (const auto& r : *recs) finished[r.id] = r.finished_ms;
  std::vector<std::int64_t> latency;
  for (const auto& r : *recs) {
    std::int64_t ready = t0_ms;
    for (const auto& d : by_id[r.id]->deps) ready = std::max(ready, finished[d]);
    latency.push_back(std::max<std::int64_t>(0, r.started_ms - ready));
  }
  std::sort(latency.begin(), latency.end());
  auto pct = [&](double p) { return latency.empty() ? 0 : latency[static_cast<std::size_t>(p * (latency.size() - 1))]; };
  std::printf("{\"shape\":\"%s\",\"jobs\":%d,\"slots\":%d,\"seconds\":%.3f,\"jobs_per_second\":%.1f,\"ready_to_started_p50_ms\":%lld,"
              "\"ready_to_started_p99_ms\":%lld,\"redis_commands_per_job\":%.1f}\n",
              shape.c_str(), n, slots, secs, n / secs, static_cast<long long>(pct(0.5)), static_cast<long long>(pct(0.99)),
              commands_before < 0 || commands_after < 0 ? -1.0 : static_cast<double>(commands_after - commands_before) / n);
  return 0;
}
