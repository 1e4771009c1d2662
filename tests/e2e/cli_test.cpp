// The `flurry` command: its maintenance subcommands against a real
// redis-server (`rebuild` clears the failed-build cache, `log` prints and
// follows a job's build log from any host), and `flurry up` as people run
// it: kept settings, and a GitHub App posting check runs in one command.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <thread>

#include "flurry/core/child.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/process.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/http/http.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/jwt.hpp"
#include "flurry/test/servers.hpp"

namespace fs = std::filesystem;
using namespace flurry;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string kFlurry = std::string(FLURRY_BINARY_DIR) + "/tools/flurry/flurry";

struct Ran {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `flurry <args>` to its end with the tests' nix configuration.
Ran run_flurry(std::vector<std::string> args) {
  args.insert(args.begin(), kFlurry);
  PosixProcessRunner runner;
  // Generous: the command waits for its own example with --timeout (600 s).
  auto r = runner.run({.argv = args, .env = {{"NIX_CONFIG", test::test_nix_config()}}, .timeout = 900s});
  if (!r) return {-1, r.error().message};
  return {r->timed_out ? -1 : r->exit_code, r->out + r->err};
}

// The web UI's address as `flurry up` printed it ("web UI: http://...").
std::string printed_web_address(const std::string& output) {
  std::smatch m;
  return std::regex_search(output, m, std::regex(R"(web UI: (http://127\.0\.0\.1:[0-9]+))")) ? m[1].str() : "";
}

}  // namespace

TEST(Rebuild, ClearsCachedFailuresSoTheNextEvaluationBuildsThem) {
  test::TempDir tmp("flurry-rebuild");
  test::RedisServer redis(tmp.file("redis"));
  state::RedisOptions o;
  o.port = redis.port();
  o.prefix = "flurry";
  auto store = state::connect_redis(o);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  const std::string drv = "/nix/store/aaaa-broken.drv";
  ASSERT_TRUE((*store)->record_failed_build(drv, {"j1", "e1", "checks.x86_64-linux.broken", "exit 1", 1}).has_value());
  test::write_file(tmp.file("flurry.toml"), "[redis]\nhost = \"127.0.0.1\"\nport = " + std::to_string(redis.port()) + "\n");

  PosixProcessRunner runner;
  const std::string& flurry = kFlurry;
  auto r = runner.run({.argv = {flurry, "rebuild", "--config", tmp.file("flurry.toml"), drv, "/nix/store/bbbb-fine.drv"},
                       .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
  EXPECT_THAT(r->out + r->err, HasSubstr(drv + ": cached failure cleared"));
  EXPECT_THAT(r->out + r->err, HasSubstr("/nix/store/bbbb-fine.drv: no cached failure"));
  EXPECT_TRUE((*store)->failed_builds({drv})->empty());

  // A configuration that does not parse is refused with exit code 2.
  test::write_file(tmp.file("bad.toml"), "[redis\n");
  auto bad = runner.run({.argv = {flurry, "rebuild", "--config", tmp.file("bad.toml"), drv}, .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->exit_code, 2);
}

TEST(Log, PrintsAJobsLogAndFollowsItUntilTheJobEnds) {
  test::TempDir tmp("flurry-log");
  test::RedisServer redis(tmp.file("redis"));
  auto store = state::connect_redis({.host = "127.0.0.1", .port = redis.port()});
  ASSERT_TRUE(store.has_value()) << store.error().message;
  state::EvalRecord e;
  e.id = "e1";
  e.repo = {"github", "octo", "hello", "file:///x", "", "main"};
  e.rev = std::string(40, 'a');
  ASSERT_TRUE(*(*store)->create_eval(e));
  state::JobSpec j;
  j.id = "j1";
  j.attr = "checks.x86_64-linux.hello";
  j.drv_path = "/nix/store/hello.drv";
  j.system = "x86_64-linux";
  ASSERT_TRUE((*store)->add_jobs("e1", {j}, 1).has_value());
  ASSERT_EQ(*(*store)->start_job("j1", 2), msg::JobState::kBuilding);
  ASSERT_TRUE((*store)->append_log("j1", "hello> step 1\n", 1 << 20).has_value());
  test::write_file(tmp.file("flurry.toml"), "[redis]\nport = " + std::to_string(redis.port()) + "\n");
  const std::string& flurry = kFlurry;
  PosixProcessRunner runner;

  // While it builds: what is there so far.
  auto now = runner.run({.argv = {flurry, "log", "--config", tmp.file("flurry.toml"), "j1"}, .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->exit_code, 0) << now->err;
  EXPECT_EQ(now->out, "hello> step 1\n");

  // Following: more output, then the job ends and the command with it.
  Result<ProcessResult> followed = fail(Error::transient("not run"));
  std::thread follower([&] {
    followed = runner.run({.argv = {flurry, "log", "--follow", "--config", tmp.file("flurry.toml"), "j1"}, .timeout = std::chrono::seconds(60)});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE((*store)->append_log("j1", "hello> step 2\n", 1 << 20).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE((*store)->finish_job("j1", msg::JobState::kSucceeded, "", 3).has_value());
  follower.join();
  ASSERT_TRUE(followed.has_value()) << followed.error().message;
  EXPECT_FALSE(followed->timed_out);
  EXPECT_EQ(followed->exit_code, 0) << followed->err;
  EXPECT_EQ(followed->out, "hello> step 1\nhello> step 2\n");

  auto missing = runner.run({.argv = {flurry, "log", "--config", tmp.file("flurry.toml"), "nope"}, .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->exit_code, 1);
  EXPECT_THAT(missing->out + missing->err, HasSubstr("no job nope"));
}

TEST(Up, KeepsSetValuesAcrossStartsUntilUnsetAndLinksPointAtTheWebService) {
  test::TempDir tmp("flurry-up-set");
  const auto state = tmp.file("state");
  auto up = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"up",   "--no-example", "--exit-when-done", "--state-dir", state,
                                     "--port", "0",           "--web-port",       "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_flurry(args);
  };
  auto config = [&] { return Config::from_file(state + "/flurry.toml"); };

  auto first = up({"--set", "builder.slots=3"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(config().get_int("builder.slots", 0), 3);
  // Without web.public_url, every service's links open the web service.
  const auto web = printed_web_address(first.output);
  ASSERT_FALSE(web.empty()) << first.output;
  for (const char* service : {"evaluator", "builder", "effects-runner", "web"}) {
    EXPECT_EQ(config().get_string(std::string(service) + ".public_url", ""), web) << service;
  }

  // Kept: a start without --set still has it, and says so.
  auto second = up({});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("builder.slots = 3"));
  EXPECT_EQ(config().get_int("builder.slots", 0), 3);

  // A later --set of the same key replaces it; web.public_url moves every
  // service's links.
  auto third = up({"--set", "builder.slots=5", "--set", R"(web.public_url="https://ci.example.org")", "--set",
                   R"(evaluator.systems=["x86_64-linux"])"});
  ASSERT_EQ(third.exit_code, 0) << third.output;
  EXPECT_EQ(config().get_int("builder.slots", 0), 5);
  EXPECT_EQ(config().get_string_list("evaluator.systems", {}), std::vector<std::string>{"x86_64-linux"});
  for (const char* service : {"evaluator", "builder", "effects-runner", "web"}) {
    EXPECT_EQ(config().get_string(std::string(service) + ".public_url", ""), "https://ci.example.org") << service;
  }

  // --unset drops one; the others stay.
  auto fourth = up({"--unset", "builder.slots"});
  ASSERT_EQ(fourth.exit_code, 0) << fourth.output;
  EXPECT_FALSE(config().has("builder.slots"));
  EXPECT_EQ(config().get_string("builder.public_url", ""), "https://ci.example.org");

  // A bad value later is refused, and what was kept is unchanged.
  const auto kept = read_file(state + "/settings");
  auto bad = up({"--set", "builder.slots=three"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("builder.slots"));
  EXPECT_EQ(read_file(state + "/settings"), kept);
}

TEST(Up, RefusesABadSetOrCheckRunsWithoutAnAppAndStartsNothing) {
  test::TempDir tmp("flurry-up-bad");
  test::write_file(tmp.file("token"), "a-token\n");
  const auto state = tmp.file("state");
  const std::vector<std::string> common = {"--no-example", "--exit-when-done", "--state-dir", state,
                                           "--port",       "0",                "--web-port",  "0"};
  auto up = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "up");
    args.insert(args.end(), common.begin(), common.end());
    return run_flurry(args);
  };

  auto not_toml = up({"--set", "builder.slots=three"});
  EXPECT_EQ(not_toml.exit_code, 2) << not_toml.output;
  EXPECT_THAT(not_toml.output, HasSubstr("builder.slots"));
  auto unquoted = up({"--set", "evaluator.systems=[x86_64-linux]"});
  EXPECT_EQ(unquoted.exit_code, 2) << unquoted.output;
  EXPECT_THAT(unquoted.output, HasSubstr("evaluator.systems"));
  auto no_key = up({"--set", "slots=3"});
  EXPECT_EQ(no_key.exit_code, 2) << no_key.output;
  EXPECT_THAT(no_key.output, HasSubstr("section.key=value"));

  auto checks_with_token = up({"--github-api-url", "http://127.0.0.1:1", "--github-token-file", tmp.file("token"), "--github-checks"});
  EXPECT_EQ(checks_with_token.exit_code, 2) << checks_with_token.output;
  EXPECT_THAT(checks_with_token.output, HasSubstr("--github-app-id"));
  auto unreadable_key = up({"--github-api-url", "http://127.0.0.1:1", "--github-app-id", "4242", "--github-app-key-file",
                            tmp.file("missing.pem")});
  EXPECT_EQ(unreadable_key.exit_code, 2) << unreadable_key.output;
  EXPECT_THAT(unreadable_key.output, HasSubstr(tmp.file("missing.pem")));

  // Nothing was started, nothing was kept.
  EXPECT_FALSE(fs::exists(state));
}

namespace {

// `flurry up` running in the background; stopped with SIGTERM (as Ctrl-C
// would) when the test ends, so that it stops the services it started.
class RunningUp {
 public:
  RunningUp(std::vector<std::string> args, const std::string& log) : log_(log) {
    args.insert(args.begin(), kFlurry);
    auto child = ChildProcess::spawn({.argv = args, .env = {{"NIX_CONFIG", test::test_nix_config()}}, .log_path = log});
    if (child) child_ = std::move(*child);
  }
  ~RunningUp() { stop(); }
  // Exit status, -1 if it never started.
  int stop() { return child_ ? child_->stop(120s) : -1; }
  std::string output() const { return read_file(log_).value_or(""); }
  // True once `text` was printed; false if it exited first or never did.
  bool wait_for_output(const std::string& text, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (child_ && std::chrono::steady_clock::now() < deadline) {
      if (output().find(text) != std::string::npos) return true;
      if (!child_->running()) return false;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

 private:
  std::string log_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace

TEST(Up, AsAGitHubAppItPostsCheckRunsThatLinkToTheLocalWebServiceInOneCommand) {
  test::TempDir tmp("flurry-up-checks");
  // GitHub as it is for an App installed on the example's repository
  // (`flurry up` pushes it as local/example).
  fakes::FakeForge github;
  auto key = test::new_rsa_key_pair();
  github.act_as_app("4242", key.public_pem, 99, "local");
  github.add_repository(fakes::kGitHub, "local", "example");
  test::write_file(tmp.file("app.pem"), key.private_pem);
  fs::permissions(tmp.file("app.pem"), fs::perms::owner_read | fs::perms::owner_write);
  const auto state = tmp.file("state");
  const auto web_port = std::to_string(free_tcp_port());

  auto first = run_flurry({"up", "--github-api-url", github.url(), "--github-app-id", "4242", "--github-app-key-file",
                           tmp.file("app.pem"), "--github-checks", "--exit-when-done", "--state-dir", state, "--example",
                           std::string(FLURRY_SOURCE_DIR) + "/examples/hello", "--port", "0", "--web-port", web_port});
  EXPECT_EQ(first.exit_code, 0) << first.output;
  const auto web = printed_web_address(first.output);
  EXPECT_EQ(web, "http://127.0.0.1:" + web_port) << first.output;
  EXPECT_THAT(first.output, Not(HasSubstr("PRIVATE KEY")));

  // A plain `flurry up` keeps the App and check runs, and serves the links.
  RunningUp second({"up", "--no-example", "--state-dir", state, "--port", "0", "--web-port", web_port}, tmp.file("second.log"));
  ASSERT_TRUE(second.wait_for_output("flurry: running.", 180s)) << second.output();
  EXPECT_THAT(second.output(), HasSubstr("github-app-id = 4242"));
  EXPECT_THAT(second.output(), HasSubstr("github-app-key-file = " + tmp.file("app.pem")));
  EXPECT_THAT(second.output(), HasSubstr("github-checks = true"));
  EXPECT_THAT(second.output(), Not(HasSubstr("PRIVATE KEY")));
  EXPECT_TRUE(Config::from_file(state + "/flurry.toml").get_bool("github.checks", false));
  EXPECT_THAT(read_file(state + "/settings").value_or(""), Not(HasSubstr("PRIVATE KEY")));

  // Each attribute's check run completes; the reporter catches up on
  // whatever the first stop left unposted.
  const std::vector<std::string> names = {"flurry/eval", "flurry/checks.x86_64-linux.hello", "flurry/checks.x86_64-linux.lint",
                                          "flurry/checks.x86_64-linux.greeting-test"};
  std::map<std::string, fakes::CheckRun> runs;
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  auto all_completed = [&] {
    runs.clear();
    for (const auto& r : github.check_runs()) runs[r.name] = r;
    return std::all_of(names.begin(), names.end(), [&](const auto& n) { return runs.count(n) && runs[n].status == "completed"; });
  };
  while (!all_completed() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(200ms);
  auto client = http::make_client();
  for (const auto& name : names) {
    ASSERT_TRUE(runs.count(name)) << name << " was never posted";
    EXPECT_EQ(runs[name].status, "completed") << name;
    EXPECT_EQ(runs[name].conclusion, "success") << name;
    ASSERT_EQ(runs[name].details_url.rfind(web + "/evals/", 0), 0u) << name << ": " << runs[name].details_url;
    // The link opens the web service. Its pages are not built yet (an
    // answer, possibly 404); the eval it names is served by the API.
    const auto& url = runs[name].details_url;
    auto page = client->send({.url = url, .timeout = 10s});
    EXPECT_TRUE(page.has_value()) << url << ": " << page.error().message;
    const auto eval_id = url.substr(web.size() + 7, url.find('/', web.size() + 7) - (web.size() + 7));
    auto api = client->send({.url = web + "/api/evals/" + eval_id, .timeout = 10s});
    ASSERT_TRUE(api.has_value()) << api.error().message;
    EXPECT_EQ(api->status, 200) << api->body;
  }
  EXPECT_TRUE(github.statuses().empty()) << "check runs only";
  EXPECT_EQ(second.stop(), 0) << second.output();
}
