// The fault run (issue 6): while four pushes' evals of 212 jobs each run
// on the whole stack, every service is SIGKILLed in turn at random points
// (the evaluator once mid-evaluation), then all of them at once;
// redis-server is SIGKILLed and nats-server restarted; webhooks arrive
// while the ingest, NATS or Redis is down and are retried as a forge
// retries them. Afterwards every job of every accepted webhook is in the
// one terminal state its flake asks for, every forge context holds that
// state, there is one job.finished per job, nothing was dead-lettered,
// every success is in the binary cache, and no derivation was built twice
// unless a builder was killed in between. The schedule is random from a
// printed seed: FLURRY_FAULT_SEED=<n> replays one; FLURRY_FAULT_HARD_SERVERS=1
// SIGKILLs nats-server too; FLURRY_FAULT_KEEP_LOGS=1 keeps the services'
// logs (kept anyway when the test fails).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "flurry/bus/nats_bus.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/process.hpp"
#include "flurry/core/text.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/http/http.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/stack/stack.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"
#include "local_stack.hpp"

namespace fs = std::filesystem;
using namespace flurry;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kSystem = "x86_64-linux";
constexpr int kBase = 200;      // c000..c199: every tenth (i % 10 == 7) fails
constexpr int kDependents = 10;  // d00..d09: odd ones depend on a failing check
constexpr int kThrows = 2;       // e0, e1: evaluation errors
constexpr int kJobsPerPush = kBase + kDependents + kThrows;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string pad(int i, int width) {
  auto s = std::to_string(i);
  return std::string(static_cast<std::size_t>(std::max(0, width - static_cast<int>(s.size()))), '0') + s;
}

// What one check of one push is, and what it must end as.
struct Check {
  std::string attr;  // c007, d03, e1
  std::string key;   // names its derivation: equal keys are one derivation
  bool fails = false;
  std::string dep;   // attr it depends on
  enum class Want { kSuccess, kFailed, kDependencyFailed, kEvalFailed } want = Want::kSuccess;
};

bool base_fails(int i) { return i % 10 == 7; }
int dependency_of(int k) { return 10 * k + (k % 2 ? 7 : 3); }

// Push p (0..3) of the flake: push 0 defines every derivation; pushes
// 1 to 3 change a quarter of the passing checks each (the rest are the same
// derivations, built once for all pushes) and fail derivations of their own.
std::vector<Check> checks_of(int p) {
  std::vector<Check> out;
  std::map<std::string, std::string> keys;
  for (int i = 0; i < kBase; ++i) {
    Check c;
    c.attr = "c" + pad(i, 3);
    c.fails = base_fails(i);
    const int variant = c.fails ? p : (p > 0 && i % 4 == p ? p : 0);
    c.key = c.attr + (c.fails ? "-p" : "-v") + std::to_string(variant);
    c.want = c.fails ? Check::Want::kFailed : Check::Want::kSuccess;
    keys[c.attr] = c.key;
    out.push_back(c);
  }
  for (int k = 0; k < kDependents; ++k) {
    Check c;
    c.attr = "d" + pad(k, 2);
    c.dep = "c" + pad(dependency_of(k), 3);
    c.key = c.attr + "-" + keys[c.dep];
    c.want = base_fails(dependency_of(k)) ? Check::Want::kDependencyFailed : Check::Want::kSuccess;
    out.push_back(c);
  }
  for (int k = 0; k < kThrows; ++k) {
    Check c;
    c.attr = "e" + std::to_string(k);
    c.want = Check::Want::kEvalFailed;
    out.push_back(c);
  }
  return out;
}

// 0.1 .. 0.8 s, the same for a check in every push.
std::string sleep_of(const std::string& attr) {
  int h = 0;
  for (char ch : attr) h = h * 31 + ch;
  return "0." + std::to_string(1 + (h & 0x7fffffff) % 8);
}

// Each build leaves start.<key>.<pid> when it begins and end.<key>.<pid>
// before it ends, in `marks` (world-writable: builds run as nixbld users).
std::string flake_of(int p, const std::string& nonce, const std::string& marks) {
  std::string body;
  for (const auto& c : checks_of(p)) {
    if (c.want == Check::Want::kEvalFailed) {
      body += "        " + c.attr + " = throw \"intentional evaluation error\";\n";
      continue;
    }
    const std::string script = "# " + nonce + "\necho start > " + marks + "/start." + c.key + ".$$\n/bin/sleep " +
                               sleep_of(c.attr) + "\necho end > " + marks + "/end." + c.key + ".$$\n" +
                               (c.fails ? "exit 1\n" : "echo ok > $out\n");
    body += "        " + c.attr + " = mk " + text::nix_string_literal(c.key) + " " + text::nix_string_literal(script) + " [" +
            (c.dep.empty() ? "" : " " + c.dep) + " ];\n";
  }
  return R"({
  outputs = { self }:
    let
      mk = name: script: deps: derivation {
        inherit name deps;
        system = ")" + kSystem + R"(";
        builder = "/bin/sh";
        args = [ "-c" script ];
      };
    in {
      checks.)" + kSystem + R"( = rec {
)" + body + R"(      };
    };
}
)";
}

struct Push {
  int index = 0;
  std::string branch, delivery, rev;
  std::string body;
  Clock::time_point send_at;
  bool accepted = false;
  int attempts = 0;
  std::map<std::string, int> refusals;  // "503", "connection", ...
};

// One build seen in the marks directory.
struct BuildMark {
  std::string pid;
  std::int64_t start_ms = 0;
  bool ended = false;
};

std::int64_t mtime_ms(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

std::map<std::string, std::vector<BuildMark>> read_marks(const std::string& dir) {
  std::map<std::string, std::map<std::string, BuildMark>> by_key;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    const auto first = name.find('.');
    const auto last = name.rfind('.');
    if (first == std::string::npos || last == first) continue;
    const auto kind = name.substr(0, first);
    const auto key = name.substr(first + 1, last - first - 1);
    const auto pid = name.substr(last + 1);
    auto& m = by_key[key][pid];
    m.pid = pid;
    if (kind == "start") m.start_ms = mtime_ms(e.path());
    if (kind == "end") m.ended = true;
  }
  std::map<std::string, std::vector<BuildMark>> out;
  for (auto& [key, pids] : by_key) {
    for (auto& [_, m] : pids) out[key].push_back(m);
    std::sort(out[key].begin(), out[key].end(), [](const BuildMark& a, const BuildMark& b) { return a.start_ms < b.start_ms; });
  }
  return out;
}

std::string want_name(Check::Want w) {
  switch (w) {
    case Check::Want::kSuccess: return "succeeded|skipped";
    case Check::Want::kFailed: return "failed";
    case Check::Want::kDependencyFailed: return "dependency_failed";
    case Check::Want::kEvalFailed: return "eval_failed";
  }
  return "?";
}

bool matches(Check::Want w, msg::JobState s) {
  switch (w) {
    case Check::Want::kSuccess: return s == msg::JobState::kSucceeded || s == msg::JobState::kSkipped;
    case Check::Want::kFailed: return s == msg::JobState::kFailed;
    case Check::Want::kDependencyFailed: return s == msg::JobState::kDependencyFailed;
    case Check::Want::kEvalFailed: return s == msg::JobState::kEvalFailed;
  }
  return false;
}

// Reads every message on `filter` of `stream` with a durable of our own,
// until none came for `quiet`.
std::vector<std::string> read_all(bus::Bus& bus, const std::string& stream, const std::string& filter, const std::string& durable,
                                    std::chrono::milliseconds quiet) {
  std::mutex mu;
  std::vector<std::string> got;
  auto last = Clock::now();
  std::atomic<bool> stop{false};
  std::thread t([&] {
    (void)bus.consume({.stream = stream, .durable = durable, .filter_subject = filter, .concurrency = 1},
                      [&](const bus::Delivery& d) {
                        std::lock_guard lock(mu);
                        got.push_back(d.data);
                        last = Clock::now();
                        return bus::Disposition::ack();
                      },
                      stop);
  });
  const auto deadline = Clock::now() + 60s;
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    std::lock_guard lock(mu);
    if (Clock::now() - last > quiet) break;
  }
  stop = true;
  t.join();
  return got;
}

class FaultRun : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env_seed = std::getenv("FLURRY_FAULT_SEED");
    seed = env_seed && *env_seed ? std::strtoull(env_seed, nullptr, 10) : std::random_device{}();
    rng.seed(seed);
    // FLURRY_FAULT_HARD_SERVERS=1: nats-server is SIGKILLed too, not only Redis.
    const char* hard = std::getenv("FLURRY_FAULT_HARD_SERVERS");
    hard_servers = hard && std::string(hard) == "1";
    std::cout << "[fault] seed " << seed << " (replay with FLURRY_FAULT_SEED=" << seed << ")" << std::endl;

    auto o = test::local_stack_options(tmp);
    o.forges["github"] = {github.url(), "ghs_faultTestToken"};
    o.extra_config = {
        "branches.features.match_glob=\"feature*\"",
        // Every job gets a context of its own, so every one can be checked.
        "reporter.max_job_statuses=100000",
        "reporter.max_failure_statuses=100000",
        "builder.slots=4",
        // A killed instance's messages go to the next one within seconds,
        // not the default minute, to bound the test's time.
        "builder.ack_wait=\"5s\"", "builder.build_lease=\"4s\"", "builder.cancel_poll_interval=\"1s\"",
        "evaluator.ack_wait=\"5s\"", "uploader.ack_wait=\"5s\"", "reporter.ack_wait=\"5s\"", "effects-runner.ack_wait=\"5s\"",
    };
    stack_ = std::make_unique<stack::Stack>(o);
    auto r = stack_->start();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    auto s = state::connect_redis({.host = "127.0.0.1", .port = stack_->redis_port()});
    ASSERT_TRUE(s.has_value()) << s.error().message;
    store = std::move(*s);

    // Builds run as nixbld users: they must reach and write the marks.
    fs::permissions(tmp.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    marks = tmp.file("marks");
    fs::create_directories(marks);
    fs::permissions(marks, fs::perms::all);
  }

  void TearDown() override {
    if (!stack_) return;
    for (const auto& name : stack::service_names()) {
      if (killed_now.count(name)) (void)stack_->start_service(name);
    }
    auto unclean = stack_->stop();
    EXPECT_TRUE(unclean.empty()) << "services that did not stop cleanly on SIGTERM: " << (unclean.empty() ? "" : unclean[0]);
    // The services' logs outlive a failed run (the temporary directory does not).
    const char* keep = std::getenv("FLURRY_FAULT_KEEP_LOGS");
    if (HasFailure() || (keep && *keep)) {
      const auto dir = fs::temp_directory_path() / ("flurry-fault-logs-" + std::to_string(seed));
      std::error_code ec;
      fs::remove_all(dir, ec);
      fs::create_directories(dir, ec);
      fs::copy(tmp.file("state/logs"), dir, fs::copy_options::recursive, ec);
      std::ofstream(dir / "timeline.txt") << [&] {
        std::string t;
        for (const auto& l : timeline) t += l + "\n";
        return t;
      }();
      std::cout << "[fault] logs kept in " << dir.string() << std::endl;
    }
  }

  // Commits each push's flake on its branch; the webhooks are sent later.
  void prepare_pushes() {
    const std::string repo = tmp.file("repo");
    const std::string nonce = crypto::random_hex(8);
    PosixProcessRunner git;
    ASSERT_TRUE(git.run({.argv = {"git", "init", "-q", "-b", "main", repo}})->ok());
    const std::vector<std::string> branches = {"main", "feature-a", "feature-b", "feature-c"};
    for (int p = 0; p < 4; ++p) {
      ASSERT_TRUE(git.run({.argv = {"git", "-C", repo, "checkout", "-q", "-B", branches[p]}})->ok());
      test::write_file(repo + "/flake.nix", flake_of(p, nonce, marks));
      auto rev = stack::commit_all(repo, "push " + std::to_string(p));
      ASSERT_TRUE(rev.has_value()) << rev.error().message;
      Push push;
      push.index = p;
      push.branch = branches[p];
      push.delivery = "fault-" + nonce + "-" + std::to_string(p);
      push.rev = *rev;
      push.body = stack::github_push_payload("octo", "faults", "file://" + repo, push.branch, "main", std::string(40, '0'), *rev);
      pushes.push_back(push);
    }
  }

  // One attempt at delivering a webhook, as a forge does: anything but a
  // 2xx answer is tried again later with the same delivery id.
  bool try_send(Push& p) {
    ++p.attempts;
    auto resp = http::make_client()->send(
        {.method = "POST",
         .url = stack_->webhook_url(),
         .headers = {{"Content-Type", "application/json"},
                     {"X-GitHub-Event", "push"},
                     {"X-GitHub-Delivery", p.delivery},
                     {"X-Hub-Signature-256", "sha256=" + crypto::hmac_sha256_hex(stack_->webhook_secret(), p.body)}},
         .body = p.body,
         .timeout = 5s});
    if (!resp) {
      ++p.refusals["no answer"];
      return false;
    }
    if (resp->status / 100 != 2) {
      ++p.refusals[std::to_string(resp->status)];
      return false;
    }
    p.accepted = true;
    return true;
  }

  double random_seconds(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

  void note(const std::string& what) {
    const auto t = std::chrono::duration<double>(Clock::now() - t0).count();
    std::ostringstream line;
    line.precision(1);
    line << std::fixed << "[fault] " << t << "s " << what;
    std::cout << line.str() << std::endl;
    timeline.push_back(line.str());
  }

  // Children dead that the test did not kill mean a crash.
  void check_no_crash() {
    for (const auto& name : stack_->dead_children()) {
      if (!killed_now.count(name) && !crashed.count(name)) {
        crashed.insert(name);
        ADD_FAILURE() << name << " died on its own; see " << stack_->log_path(name);
      }
    }
  }

  void kill(const std::string& name) {
    if (name == "builder") builder_kills_ms.push_back(wall_ms());
    stack_->kill_service(name);
    killed_now.insert(name);
    ++kills[name];
  }

  void restart(const std::string& name) {
    auto r = stack_->start_service(name);
    if (!r) ADD_FAILURE() << "cannot restart " << name << ": " << r.error().message;
    killed_now.erase(name);
  }

  test::TempDir tmp{"flurry-fault"};
  fakes::FakeForge github;
  std::unique_ptr<stack::Stack> stack_;
  std::unique_ptr<state::StateStore> store;
  std::string marks;
  std::uint64_t seed = 0;
  std::mt19937_64 rng;
  std::vector<Push> pushes;
  Clock::time_point t0 = Clock::now();
  std::vector<std::string> timeline;
  std::set<std::string> killed_now, crashed;
  std::map<std::string, int> kills;
  std::vector<std::int64_t> builder_kills_ms;  // wall clock, as the marks' mtimes
  int server_restarts = 0;
  bool hard_servers = false;
};

}  // namespace

TEST_F(FaultRun, KilledServicesAndRestartedServersLoseNothingAndBuildNothingTwice) {
  prepare_pushes();
  ASSERT_EQ(pushes.size(), 4u);
  t0 = Clock::now();

  // The schedule: every service once in a random order, everything at
  // once, and both servers, each after a random pause and down for a
  // random while.
  std::vector<std::string> steps = stack::service_names();
  steps.push_back("*all*");
  steps.push_back("nats-server");
  steps.push_back("redis-server");
  std::shuffle(steps.begin(), steps.end(), rng);
  // Push 1 arrives while the ingest is down, push 2 while NATS is, push 3
  // while Redis is; push 0 at once, and push 0 again (a forge's
  // redelivery) at a random step.
  const std::size_t redeliver_at = std::uniform_int_distribution<std::size_t>(0, steps.size() - 1)(rng);
  std::vector<Push*> outbox;  // sent and not yet accepted
  pushes[0].send_at = Clock::now();
  outbox.push_back(&pushes[0]);
  Push redelivery = pushes[0];
  redelivery.index = -1;

  auto pump = [&](Clock::time_point until) {
    do {
      for (auto it = outbox.begin(); it != outbox.end();) {
        if (Clock::now() >= (*it)->send_at && try_send(**it)) {
          note("webhook " + (*it)->delivery + " accepted after " + std::to_string((*it)->attempts) + " attempt(s)");
          it = outbox.erase(it);
          continue;
        }
        if (Clock::now() >= (*it)->send_at) (*it)->send_at = Clock::now() + 500ms;
        ++it;
      }
      check_no_crash();
      std::this_thread::sleep_for(50ms);
    } while (Clock::now() < until);
  };
  auto pause = [&](double lo, double hi) { pump(Clock::now() + std::chrono::milliseconds(static_cast<int>(1000 * random_seconds(lo, hi)))); };

  // The first eval is under way (its evaluation takes about half a
  // second): its evaluator dies in the middle.
  const auto started_deadline = Clock::now() + 20s;
  while (read_file(stack_->log_path("evaluator")).value_or("").find("\"event\":\"eval.started\"") == std::string::npos &&
         Clock::now() < started_deadline) {
    pump(Clock::now() + 20ms);
  }
  pause(0.02, 0.3);
  note("SIGKILL evaluator (while it evaluates push 0)");
  kill("evaluator");
  pause(0.3, 1.5);
  restart("evaluator");
  note("evaluator restarted");
  pause(1, 3);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& step = steps[i];
    if (i == redeliver_at) {
      redelivery.send_at = Clock::now();
      outbox.push_back(&redelivery);
    }
    if (step == "*all*") {
      note("SIGKILL every service at once");
      for (const auto& name : stack::service_names()) kill(name);
      pause(0.5, 2.5);
      for (const auto& name : stack::service_names()) restart(name);
      note("every service restarted");
    } else if (step == "nats-server" || step == "redis-server") {
      // Redis dies as in a crash (its AOF has every write it answered);
      // nats-server is restarted cleanly unless FLURRY_FAULT_HARD_SERVERS=1:
      // nats-server 2.9 may answer a publish before writing it, so a
      // SIGKILL can lose what it acknowledged, which is no fault of ours.
      const bool hard = step == "redis-server" || hard_servers;
      note(std::string(hard ? "SIGKILL " : "stop ") + step);
      stack_->stop_server(step, hard);
      Push& during = pushes[step == "nats-server" ? 2 : 3];
      during.send_at = Clock::now();
      outbox.push_back(&during);
      pause(2, 7);  // a restart's few seconds, longer than a single retry's backoff
      auto r = stack_->start_server(step);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      ++server_restarts;
      note(step + " restarted");
    } else {
      note("SIGKILL " + step);
      kill(step);
      if (step == "webhook-ingest") {
        pushes[1].send_at = Clock::now();
        outbox.push_back(&pushes[1]);
      }
      pause(0.3, 2.5);
      restart(step);
      note(step + " restarted");
    }
    pause(1.5, 5);
  }
  note("fault schedule done");
  pump(Clock::now() + 1ms);
  // Every webhook is delivered in the end, as a forge keeps retrying.
  const auto send_deadline = Clock::now() + 30s;
  while (!outbox.empty() && Clock::now() < send_deadline) pump(Clock::now() + 500ms);
  for (const auto& p : pushes) ASSERT_TRUE(p.accepted) << "webhook " << p.delivery << " never accepted";
  ASSERT_TRUE(redelivery.accepted);

  // Settle: every eval ended and every context of every push is final.
  std::map<int, std::vector<Check>> want;
  for (const auto& p : pushes) want[p.index] = checks_of(p.index);
  auto ctx = [](const std::string& attr) { return "flurry/checks." + kSystem + "." + attr; };
  auto settled = [&](std::string* why) {
    for (const auto& p : pushes) {
      auto e = store->get_eval(state::eval_id_for_change("github:" + p.delivery));
      if (!e || !e->has_value()) return (*why = "no eval yet for push " + std::to_string(p.index)), false;
      const auto& ev = **e;
      if (ev.state == state::EvalState::kEvaluating || ev.state == state::EvalState::kBuilding || ev.jobs_pending > 0) {
        return (*why = "push " + std::to_string(p.index) + " eval " + std::string(state::to_string(ev.state)) + ", " +
                       std::to_string(ev.jobs_pending) + " of " + std::to_string(ev.jobs_total) + " jobs pending"),
               false;
      }
      auto finals = github.final_statuses(p.rev);
      for (const auto& c : want[p.index]) {
        auto it = finals.find(ctx(c.attr));
        if (it == finals.end() || it->second.state == "pending") {
          return (*why = "push " + std::to_string(p.index) + ": " + ctx(c.attr) + " is " +
                         (it == finals.end() ? std::string("missing") : it->second.state)),
                 false;
        }
      }
      if (!finals.count("flurry/eval") || finals["flurry/eval"].state == "pending") {
        return (*why = "push " + std::to_string(p.index) + ": flurry/eval not final"), false;
      }
    }
    return true;
  };
  std::string why;
  const auto settle_deadline = Clock::now() + 150s;
  bool done = false;
  while (!(done = settled(&why)) && Clock::now() < settle_deadline) {
    check_no_crash();
    std::this_thread::sleep_for(500ms);
  }
  note(done ? "settled" : "did not settle: " + why);
  std::this_thread::sleep_for(2s);  // late, wrong statuses show up too
  EXPECT_TRUE(done) << "not settled 150 s after the faults: " << why;
  check_no_crash();
  EXPECT_TRUE(stack_->dead_children().empty());

  // 1. Every job of every push is in the terminal state its check asks for.
  int jobs_checked = 0, contexts_checked = 0;
  std::map<std::string, int> by_state;
  std::map<std::string, msg::JobState> state_of;  // job id -> state
  std::map<std::string, std::string> out_of;      // job id -> out path, for successes
  std::set<std::string> our_jobs;
  for (const auto& p : pushes) {
    SCOPED_TRACE("push " + std::to_string(p.index) + " (" + p.branch + ")");
    const auto eval_id = state::eval_id_for_change("github:" + p.delivery);
    auto e = store->get_eval(eval_id);
    ASSERT_TRUE(e && e->has_value());
    const auto& ev = **e;
    auto jobs = store->list_jobs(eval_id);
    ASSERT_TRUE(jobs.has_value()) << jobs.error().message;
    EXPECT_EQ(static_cast<int>(jobs->size()), kJobsPerPush);
    EXPECT_EQ(ev.jobs_total, kJobsPerPush);
    EXPECT_EQ(ev.jobs_pending, 0);
    std::map<std::string, const state::JobRecord*> by_attr;
    for (const auto& j : *jobs) by_attr[j.attr] = &j;
    int not_successful = 0;
    for (const auto& c : want[p.index]) {
      const auto attr = "checks." + kSystem + "." + c.attr;
      auto it = by_attr.find(attr);
      if (it == by_attr.end()) {
        ADD_FAILURE() << "no job for " << attr;
        continue;
      }
      const auto& j = *it->second;
      ++jobs_checked;
      ++by_state[std::string(msg::to_string(j.state))];
      our_jobs.insert(j.id);
      state_of[j.id] = j.state;
      if (msg::is_success(j.state) && j.outputs.count("out")) out_of[j.id] = j.outputs.at("out");
      not_successful += !msg::is_success(j.state);
      EXPECT_TRUE(msg::is_terminal(j.state)) << attr << " is " << msg::to_string(j.state);
      EXPECT_TRUE(matches(c.want, j.state)) << attr << " is " << msg::to_string(j.state) << ", want " << want_name(c.want) << ": "
                                            << j.error;
    }
    EXPECT_EQ(ev.jobs_failed, not_successful);
    EXPECT_EQ(ev.state, not_successful ? state::EvalState::kFailed : state::EvalState::kSucceeded) << state::to_string(ev.state);

    // 2. Every forge context holds the job's final state.
    auto finals = github.final_statuses(p.rev);
    std::set<std::string> expected{"flurry/eval"};
    for (const auto& c : want[p.index]) {
      const auto attr = "checks." + kSystem + "." + c.attr;
      if (!by_attr.count(attr)) continue;
      expected.insert(ctx(c.attr));
      ++contexts_checked;
      auto f = finals.find(ctx(c.attr));
      if (f == finals.end()) {
        ADD_FAILURE() << "no status for " << ctx(c.attr);
        continue;
      }
      EXPECT_EQ(f->second.state, msg::to_string(msg::status_for(by_attr[attr]->state)))
          << ctx(c.attr) << " (job " << msg::to_string(by_attr[attr]->state) << "): " << f->second.description;
    }
    ++contexts_checked;
    EXPECT_EQ(finals["flurry/eval"].state, "success") << finals["flurry/eval"].description;
    for (const auto& [c, st] : finals) {
      EXPECT_TRUE(expected.count(c) || c == "flurry/effects") << "unexpected context " << c << " = " << st.state;
    }
  }

  // 3. One job.finished per job, saying its stored state.
  auto bus = bus::connect_nats({.url = stack_->nats_url(), .name = "fault-test"});
  ASSERT_TRUE(bus.has_value()) << bus.error().message;
  auto finished = read_all(**bus, std::string(subjects::kEventsStream), std::string(subjects::kJobFinished), "fault-test-finished", 3s);
  std::map<std::string, int> finished_count;
  for (const auto& d : finished) {
    auto f = msg::decode_job_finished(d);
    ASSERT_TRUE(f.has_value()) << f.error().message;
    if (!our_jobs.count(f->job_id)) continue;
    ++finished_count[f->job_id];
    EXPECT_EQ(f->state, state_of[f->job_id]) << f->attr << ": job.finished says " << msg::to_string(f->state) << ", the store "
                                             << msg::to_string(state_of[f->job_id]);
  }
  for (const auto& id : our_jobs) EXPECT_EQ(finished_count[id], 1) << "job.finished messages for job " << id;

  // 4. Nothing was dead-lettered: no message was given up on.
  auto dead = read_all(**bus, std::string(subjects::kDeadStream), "flurry.dead.>", "fault-test-dead", 2s);
  for (const auto& d : dead) {
    auto dl = msg::decode_dead_letter(d);
    ADD_FAILURE() << "dead-lettered: " << (dl ? dl->consumer + " " + dl->subject + ": " + dl->reason + " " + dl->data : d);
  }

  // 5. Every success is in the binary cache.
  int cached = 0;
  for (const auto& [id, out] : out_of) {
    const auto base = fs::path(out).filename().string();
    const bool in = fs::exists(stack_->cache_dir() + "/" + base.substr(0, 32) + ".narinfo");
    cached += in;
    EXPECT_TRUE(in) << out << " (job " << id << ") is not in the cache";
  }

  // 6. Each derivation was built once, or again only after a builder was
  // killed while an earlier build of it ran or before its result was
  // stored.
  auto built = read_marks(marks);
  int builds = 0, rebuilt = 0;
  for (const auto& [key, list] : built) {
    builds += static_cast<int>(list.size());
    for (std::size_t i = 1; i < list.size(); ++i) {
      const auto& before = list[i - 1];
      const auto& again = list[i];
      const bool builder_killed = std::any_of(builder_kills_ms.begin(), builder_kills_ms.end(), [&](std::int64_t t) {
        return t + 1000 >= before.start_ms && t <= again.start_ms + 1000;  // mtimes and clocks: a second's slack
      });
      if (builder_killed) {
        ++rebuilt;
        continue;
      }
      ADD_FAILURE() << key << " was built again at " << again.start_ms << " (pid " << again.pid << ") after a build at "
                    << before.start_ms << " (pid " << before.pid << ", " << (before.ended ? "finished" : "unfinished")
                    << ") with no builder killed in between";
    }
  }
  // Every derivation a job built (not failed dependencies, not evaluation
  // errors) was built at least once.
  std::set<std::string> needed;
  for (const auto& p : pushes) {
    for (const auto& c : want[p.index]) {
      if (c.want == Check::Want::kSuccess || c.want == Check::Want::kFailed) needed.insert(c.key);
    }
  }
  for (const auto& key : needed) EXPECT_TRUE(built.count(key)) << key << " was never built";

  // Whether that kill landed mid-evaluation: push 0's change was started
  // more than once (the evaluator logs a line per delivery it takes).
  int push0_eval_starts = 0;
  {
    std::istringstream log(read_file(stack_->log_path("evaluator")).value_or(""));
    const auto change = "\"change_id\":\"github:" + pushes[0].delivery + "\"";
    for (std::string line; std::getline(log, line);) {
      push0_eval_starts += line.find("\"event\":\"eval.started\"") != std::string::npos && line.find(change) != std::string::npos;
    }
  }
  std::ostringstream states;
  for (const auto& [s, n] : by_state) states << " " << s << "=" << n;
  std::ostringstream killed;
  for (const auto& [s, n] : kills) killed << " " << s << "=" << n;
  int attempts = 0, refused = 0;
  for (const auto& p : pushes) {
    attempts += p.attempts;
    for (const auto& [_, n] : p.refusals) refused += n;
  }
  std::cout << "[fault] checked: seed " << seed << "; " << pushes.size() << " pushes + 1 redelivery accepted (" << attempts
            << " attempts, " << refused << " refused while down); kills:" << killed.str() << " (each alone, then all at once; the evaluator also mid-evaluation: push 0 evaluated "
            << push0_eval_starts << " times); server restarts " << server_restarts << "; jobs " << jobs_checked << ":" << states.str() << "; forge contexts " << contexts_checked
            << "; job.finished " << finished_count.size() << "; dead letters " << dead.size() << "; cache entries " << cached
            << "; derivations built " << built.size() << " in " << builds << " builds, " << rebuilt
            << " rebuilt after a builder kill" << std::endl;
}
