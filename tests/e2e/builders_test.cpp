// Several flurry-builder processes over one real nats-server, redis-server
// and nix, driven the way the evaluator drives them (jobs recorded in
// Redis, build requests on the bus): they share their system's queue so
// that each job is built once, and a job whose builder is killed in the
// middle of its build is finished by another builder.
#include <gtest/gtest.h>

#include <csignal>

#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "flurry/bus/nats_bus.hpp"
#include "flurry/core/child.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/process.hpp"
#include "flurry/core/text.hpp"
#include "flurry/http/http.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"
#include "service_process.hpp"

namespace fs = std::filesystem;
using namespace flurry;
using namespace std::chrono_literals;

namespace {

const std::string kSystem = "x86_64-linux";
// Builds run without the sandbox and without PATH: commands by full path.
const std::string kSleep = "/bin/sleep";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Polls `done` every 200 ms until it holds or `timeout` passed.
bool wait_until(std::chrono::milliseconds timeout, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return done();
}

struct Drv {
  std::string name;
  std::string drv_path;
  std::string out_path;
  std::vector<std::string> features;  // requiredSystemFeatures
};

struct Builder {
  std::string name;
  std::string log_path;
  std::unique_ptr<ChildProcess> proc;
};

class Builders : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = state::connect_redis({.host = "127.0.0.1", .port = redis.port()});
    ASSERT_TRUE(s.has_value()) << s.error().message;
    store = std::move(*s);
    auto b = bus::connect_nats({.url = nats.url(), .name = "flurry-builders-test"});
    ASSERT_TRUE(b.has_value()) << b.error().message;
    bus_ = std::move(*b);
    eval_id = state::eval_id_for_change("test:builders-" + nonce);
  }

  // Starts a flurry-builder on its own loopback port with `extra` [builder]
  // settings (TOML values) and waits until it answers /healthz.
  Builder& start_builder(const std::string& name, const std::map<std::string, std::string>& extra) {
    auto config = [&](int port) {
      std::string c = "[log]\nlevel = \"info\"\n\n[nats]\nurl = \"" + nats.url() + "\"\n\n[redis]\nhost = \"127.0.0.1\"\nport = " +
                      std::to_string(redis.port()) + "\n\n[builder]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\nslots = 2\n";
      for (const auto& [k, v] : extra) c += k + " = " + v + "\n";
      return c;
    };
    auto started = test::start_service(name, "services/builder/flurry-builder", config, tmp, {{"NIX_CONFIG", test::test_nix_config()}});
    Builder b{name, started.log_path, std::move(started.proc)};
    builders_.push_back(std::move(b));
    return builders_.back();
  }

  // Instantiates one derivation per (name, shell script) in the store; the
  // run's nonce keeps their outputs unbuilt. Names listed in `features`
  // require those system features.
  std::vector<Drv> instantiate(const std::vector<std::pair<std::string, std::string>>& scripts,
                               const std::map<std::string, std::vector<std::string>>& features = {}) {
    std::string list;
    for (const auto& [name, script] : scripts) {
      std::string required;
      if (auto f = features.find(name); f != features.end()) {
        for (const auto& x : f->second) required += " " + text::nix_string_literal(x);
      }
      list += " (derivation { name = " + text::nix_string_literal(name) + "; system = " + text::nix_string_literal(kSystem) +
              "; builder = \"/bin/sh\"; args = [ \"-ec\" " + text::nix_string_literal(script) +
              " ]; nonce = " + text::nix_string_literal(nonce) + "; requiredSystemFeatures = [" + required + " ]; })";
    }
    PosixProcessRunner runner;
    auto r = runner.run({.argv = {"nix", "eval", "--json", "--expr", "map (d: { drv = d.drvPath; out = d.outPath; }) [" + list + " ]"},
                         .env = {{"NIX_CONFIG", test::test_nix_config()}},
                         .timeout = 60s});
    if (!r || !r->ok()) throw std::runtime_error("nix eval failed: " + (r ? r->describe() + " " + r->err : r.error().message));
    auto j = nlohmann::json::parse(r->out);
    std::vector<Drv> out;
    for (std::size_t i = 0; i < scripts.size(); ++i) {
      const auto& name = scripts[i].first;
      out.push_back({name, j.at(i).at("drv").get<std::string>(), j.at(i).at("out").get<std::string>(),
                     features.count(name) ? features.at(name) : std::vector<std::string>{}});
    }
    return out;
  }

  // Records an eval with one independent job per derivation and publishes
  // the build requests of the jobs that are ready, as the evaluator would.
  std::vector<std::string> record_and_publish(const std::vector<Drv>& drvs) {
    state::EvalRecord e;
    e.id = eval_id;
    e.change_id = "test:builders-" + nonce;
    e.repo = {"github", "octo", "builders", "file:///nonexistent", "", "main"};
    e.ref = "refs/heads/main";
    e.branch = "main";
    e.rev = std::string(40, 'b');
    auto created = store->create_eval(e);
    EXPECT_TRUE(created.has_value() && *created);
    std::vector<state::JobSpec> specs;
    std::vector<std::string> ids;
    for (const auto& d : drvs) {
      state::JobSpec j;
      j.attr = "checks." + kSystem + "." + d.name;
      j.id = state::job_id_for(eval_id, j.attr);
      j.drv_path = d.drv_path;
      j.system = kSystem;
      j.outputs = {{"out", d.out_path}};
      j.cache_status = "notBuilt";
      j.name = d.name;
      j.features = d.features;
      specs.push_back(j);
      ids.push_back(j.id);
    }
    auto t = store->add_jobs(eval_id, specs, now_ms());
    EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().message);
    if (!t) return ids;
    EXPECT_EQ(t->ready.size(), ids.size());
    for (const auto& id : t->ready) {
      auto job = store->get_job(id);
      EXPECT_TRUE(job && job->has_value()) << id;
      if (!job || !job->has_value()) continue;
      auto p = pipeline::publish_build_request(*bus_, e, **job);
      EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().message);
    }
    return ids;
  }

  // Waits until every job of the eval is terminal and the eval ended; fails
  // early when a builder that should be running died.
  bool wait_for_eval_end(std::chrono::milliseconds timeout) {
    bool ended = wait_until(timeout, [&] {
      for (auto& b : builders_) {
        if (b.proc && !b.proc->running()) return true;
      }
      auto e = store->get_eval(eval_id);
      if (!e || !e->has_value()) return false;
      auto st = (*e)->state;
      if (st == state::EvalState::kEvaluating || st == state::EvalState::kBuilding) return false;
      auto jobs = store->list_jobs(eval_id);
      if (!jobs) return false;
      for (const auto& j : *jobs) {
        if (!msg::is_terminal(j.state)) return false;
      }
      return true;
    });
    for (auto& b : builders_) {
      if (b.proc && !b.proc->running()) {
        ADD_FAILURE() << b.name << " died (status " << b.proc->exit_status() << "):\n" << read_file(b.log_path).value_or("");
        return false;
      }
    }
    if (!ended) ADD_FAILURE() << "the eval did not end in time\n" << all_logs();
    return ended;
  }

  // How often each job id appears in a build.started event of the log.
  static std::map<std::string, int> started_jobs(const std::string& log_path) {
    std::map<std::string, int> out;
    for (const auto& j : started_events(log_path)) ++out[j.value("job_id", "")];
    return out;
  }
  static std::vector<nlohmann::json> started_events(const std::string& log_path) {
    std::vector<nlohmann::json> out;
    std::istringstream in(read_file(log_path).value_or(""));
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("event", "") == "build.started") out.push_back(std::move(j));
    }
    return out;
  }
  msg::JobState job_state(const std::string& id) {
    auto j = store->get_job(id);
    return j && j->has_value() ? (*j)->state : msg::JobState::kQueued;
  }

  std::string all_logs() const {
    std::string out;
    for (const auto& b : builders_) out += "--- " + b.name + " log:\n" + read_file(b.log_path).value_or("") + "\n";
    return out;
  }

  test::TempDir tmp{"flurry-builders"};
  test::NatsServer nats{tmp.file("nats")};
  test::RedisServer redis{tmp.file("redis")};
  std::unique_ptr<state::StateStore> store;
  std::unique_ptr<bus::Bus> bus_;
  std::string nonce = crypto::random_hex(8);
  std::string eval_id;
  std::deque<Builder> builders_;  // a deque: references stay valid as it grows
};

}  // namespace

TEST_F(Builders, TwoInstancesShareOneQueueAndBuildEachJobOnce) {
  Builder& one = start_builder("builder-1", {});
  Builder& two = start_builder("builder-2", {});
  std::vector<std::pair<std::string, std::string>> scripts;
  for (int i = 1; i <= 8; ++i) scripts.emplace_back("b-" + std::to_string(i), "echo hi; " + kSleep + " 1; echo ok > $out");
  auto drvs = instantiate(scripts);
  auto ids = record_and_publish(drvs);
  ASSERT_EQ(ids.size(), 8u);

  ASSERT_TRUE(wait_for_eval_end(90s));
  auto eval = store->get_eval(eval_id);
  ASSERT_TRUE(eval && eval->has_value());
  EXPECT_EQ((*eval)->state, state::EvalState::kSucceeded);
  EXPECT_EQ((*eval)->jobs_pending, 0);
  EXPECT_EQ((*eval)->jobs_failed, 0);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto job = store->get_job(ids[i]);
    ASSERT_TRUE(job && job->has_value()) << ids[i];
    EXPECT_EQ((*job)->state, msg::JobState::kSucceeded) << drvs[i].name << ": " << (*job)->error;
    EXPECT_EQ((*job)->attempts, 1) << drvs[i].name;
    // nix really built it.
    EXPECT_EQ(read_file(drvs[i].out_path).value_or("<missing>"), "ok\n") << drvs[i].out_path;
  }

  // Stopped first, so that their logs are complete.
  EXPECT_EQ(one.proc->stop(), 0) << read_file(one.log_path).value_or("");
  EXPECT_EQ(two.proc->stop(), 0) << read_file(two.log_path).value_or("");
  auto by_one = started_jobs(one.log_path);
  auto by_two = started_jobs(two.log_path);
  for (const auto& id : ids) {
    int started = (by_one.count(id) ? by_one[id] : 0) + (by_two.count(id) ? by_two[id] : 0);
    EXPECT_EQ(started, 1) << "job " << id << " was started " << started << " times\n" << all_logs();
  }
  EXPECT_EQ(by_one.size() + by_two.size(), ids.size()) << "build.started for jobs not of this eval\n" << all_logs();
  EXPECT_GE(by_one.size(), 1u) << "builder-1 built nothing\n" << all_logs();
  EXPECT_GE(by_two.size(), 1u) << "builder-2 built nothing\n" << all_logs();
}

TEST_F(Builders, AJobOfAKilledBuilderIsFinishedByAnother) {
  // Redelivery after 3 s without an in-progress ack; the derivation claim
  // outlives its holder by 3 s.
  const std::map<std::string, std::string> fast_failover = {
      {"ack_wait", "\"3s\""}, {"cancel_poll_interval", "\"500ms\""}, {"build_lease", "\"3s\""}};
  Builder& a = start_builder("builder-a", fast_failover);
  // The build runs as a nixbld user (no sandbox): it needs a directory it
  // may write its marker to.
  fs::permissions(tmp.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::create_directories(tmp.file("marks"));
  fs::permissions(tmp.file("marks"), fs::perms::all);
  // One marker file per attempt ($$: the build shell's pid): another
  // attempt may run as another build user, who could not append to the
  // first one's file.
  const std::string marks = tmp.file("marks");
  auto started = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(marks)) n += e.path().filename().string().rfind("started-", 0) == 0;
    return n;
  };
  auto drvs = instantiate({{"slow", "echo started > " + marks + "/started-$$; echo building slowly; " + kSleep + " 8; echo ok > $out"}});
  auto ids = record_and_publish(drvs);
  ASSERT_EQ(ids.size(), 1u);
  const std::string job_id = ids[0];

  ASSERT_TRUE(wait_until(60s, [&] { return started() > 0; })) << "builder-a never started the build\n" << all_logs();
  // The build's output is readable while nix is silent (a live log).
  EXPECT_TRUE(wait_until(10s, [&] { return store->get_log(job_id).value_or("").find("building slowly") != std::string::npos; }))
      << store->get_log(job_id).value_or("");
  Builder& b = start_builder("builder-b", fast_failover);
  a.proc->kill_now();
  a.proc.reset();

  ASSERT_TRUE(wait_for_eval_end(90s));
  auto job = store->get_job(job_id);
  ASSERT_TRUE(job && job->has_value());
  EXPECT_EQ((*job)->state, msg::JobState::kSucceeded) << (*job)->error << "\n" << all_logs();
  EXPECT_EQ((*job)->attempts, 2) << all_logs();
  auto eval = store->get_eval(eval_id);
  ASSERT_TRUE(eval && eval->has_value());
  EXPECT_EQ((*eval)->state, state::EvalState::kSucceeded);
  EXPECT_EQ(read_file(drvs[0].out_path).value_or("<missing>"), "ok\n") << drvs[0].out_path;
  auto log = store->get_log(job_id);
  ASSERT_TRUE(log.has_value()) << log.error().message;
  EXPECT_NE(log->find("--- flurry: build attempt 2 ---"), std::string::npos) << *log;
  EXPECT_LT(log->find("building slowly"), log->find("--- flurry: build attempt 2 ---")) << *log;  // attempt 1's output kept
  // The killed builder's nix stopped with it (it was not left building on
  // its own): builder-b ran the build again.
  EXPECT_EQ(started(), 2);

  EXPECT_EQ(b.proc->stop(), 0) << read_file(b.log_path).value_or("");
  EXPECT_EQ(started_jobs(a.log_path)[job_id], 1) << all_logs();
  EXPECT_EQ(started_jobs(b.log_path)[job_id], 1) << all_logs();
}

// SIGTERM while a build runs: the builder waits for it no longer than its
// shutdown_timeout, exits saying so, and the job is not lost: another
// builder finishes it.
TEST_F(Builders, SigtermMidBuildStopsWithinTheShutdownTimeoutAndTheJobIsFinishedByAnother) {
  const std::map<std::string, std::string> quick = {
      {"ack_wait", "\"3s\""}, {"cancel_poll_interval", "\"500ms\""}, {"build_lease", "\"3s\""}, {"shutdown_timeout", "\"2s\""}};
  Builder& a = start_builder("builder-a", quick);
  auto drvs = instantiate({{"long", "echo building long; " + kSleep + " 15; echo ok > $out"}});
  auto ids = record_and_publish(drvs);
  ASSERT_EQ(ids.size(), 1u);
  const std::string job_id = ids[0];
  ASSERT_TRUE(wait_until(60s, [&] { return store->get_log(job_id).value_or("").find("building long") != std::string::npos; }))
      << "builder-a never started the build\n" << all_logs();

  a.proc->signal(SIGTERM);
  // Its build would take 15 s; the 2 s shutdown timeout ends the wait.
  EXPECT_TRUE(wait_until(10s, [&] { return !a.proc->running(); })) << "builder-a outlived its shutdown timeout\n" << all_logs();
  if (a.proc->running()) a.proc->kill_now();
  EXPECT_NE(read_file(a.log_path).value_or("").find("service.shutdown_timeout"), std::string::npos) << all_logs();
  a.proc.reset();

  Builder& b = start_builder("builder-b", quick);
  ASSERT_TRUE(wait_for_eval_end(120s));
  auto job = store->get_job(job_id);
  ASSERT_TRUE(job && job->has_value());
  EXPECT_EQ((*job)->state, msg::JobState::kSucceeded) << (*job)->error << "\n" << all_logs();
  EXPECT_EQ((*job)->attempts, 2) << all_logs();
  EXPECT_EQ(read_file(drvs[0].out_path).value_or("<missing>"), "ok\n");
  EXPECT_EQ(b.proc->stop(), 0) << read_file(b.log_path).value_or("");
}

// requiredSystemFeatures: a job needing big-parallel waits for a builder
// that offers it; one that does not takes only the other jobs.
TEST_F(Builders, AJobNeedingSystemFeaturesGoesOnlyToABuilderOfferingThem) {
  Builder& small = start_builder("small", {{"features", "[]"}, {"feature_poll_interval", "\"200ms\""}});
  auto drvs = instantiate({{"plain", "echo ok > $out"}, {"big", "echo ok > $out"}}, {{"big", {"big-parallel"}}});
  auto ids = record_and_publish(drvs);
  ASSERT_EQ(ids.size(), 2u);
  ASSERT_TRUE(wait_until(60s, [&] { return msg::is_terminal(job_state(ids[0])); })) << all_logs();
  EXPECT_EQ(job_state(ids[0]), msg::JobState::kSucceeded);
  // Bounded look: the small builder never takes the big-parallel job.
  EXPECT_FALSE(wait_until(3s, [&] { return job_state(ids[1]) != msg::JobState::kQueued; })) << all_logs();

  Builder& big = start_builder("big", {{"features", "[\"big-parallel\", \"benchmark\"]"}, {"feature_poll_interval", "\"200ms\""}});
  ASSERT_TRUE(wait_for_eval_end(60s));
  EXPECT_EQ(job_state(ids[1]), msg::JobState::kSucceeded);
  EXPECT_EQ(read_file(drvs[1].out_path).value_or("<missing>"), "ok\n");
  EXPECT_EQ(small.proc->stop(), 0);
  EXPECT_EQ(big.proc->stop(), 0);
  EXPECT_EQ(started_jobs(small.log_path), (std::map<std::string, int>{{ids[0], 1}})) << all_logs();
  auto started = started_events(big.log_path);
  ASSERT_EQ(started.size(), 1u) << all_logs();
  EXPECT_EQ(started[0].value("job_id", ""), ids[1]);
  EXPECT_EQ(started[0].value("queue", ""), "builder-x86_64-linux-big-parallel");
}
