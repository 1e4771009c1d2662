// Every encoded message validates against its JSON Schema in schemas/, and
// the validator really rejects a wrong document.
#include <gtest/gtest.h>

#include <fstream>

#include "flurry/core/process.hpp"
#include "flurry/messages/messages.hpp"

using namespace flurry;
using namespace flurry::msg;

namespace {

const std::string kSchemas = std::string(FLURRY_SOURCE_DIR) + "/schemas/";

// Runs schemas/validate.py on `doc`; returns its exit code (stderr in `err`).
int validate(const std::string& schema, const std::string& doc, std::string& err) {
  // Unique per test: ctest runs tests of this binary in parallel.
  std::string path = ::testing::TempDir() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
                     schema + ".sample.json";
  std::ofstream(path) << doc;
  PosixProcessRunner runner;
  auto r = runner.run({.argv = {"/usr/bin/python3", kSchemas + "validate.py", kSchemas + schema + ".schema.json", path}});
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  if (!r) return -1;
  err = r->err;
  return r->exit_code;
}

Repo repo() { return {"github", "octo", "hello", "https://github.com/octo/hello.git", "https://github.com/octo/hello", "main"}; }
const std::string kRev(40, 'a');

}  // namespace

TEST(Schemas, EveryEncodedMessageIsValid) {
  std::string err;
  EXPECT_EQ(validate("change_event", encode(ChangeEvent{"github:1", "push", repo(), "refs/heads/main", "main", "", kRev, kRev, "me", 1}), err), 0) << err;
  EXPECT_EQ(validate("build_request", encode(BuildRequest{"e", "j", "checks.x.a", "/nix/store/a.drv", "x86_64-linux", ""}), err), 0) << err;
  EXPECT_EQ(validate("job_finished", encode(JobFinished{"e", "j", "a", "/nix/store/a.drv", "x86_64-linux", JobState::kUnsupportedSystem, {{"out", "/nix/store/o"}}, ""}), err), 0) << err;
  EXPECT_EQ(validate("eval_finished", encode(EvalFinished{"e", "failed", repo(), "refs/heads/main", "main", "", kRev, 3, 1}), err), 0) << err;
  EXPECT_EQ(validate("status_event", encode(StatusEvent{"e", repo(), kRev, "flurry/eval", StatusState::kError, "d", "", 5}), err), 0) << err;
  EXPECT_EQ(validate("status_event", encode(StatusEvent{"e", repo(), kRev, "flurry/checks.x.a", StatusState::kFailure, "d", "", 5, "j", "timed_out"}), err), 0) << err;
  EXPECT_EQ(validate("dead_letter", encode(DeadLetter{"builder", "flurry.build.x", "bad", 5, "{"}), err), 0) << err;
  // With every optional field issue 14 added.
  auto app_repo = repo();
  app_repo.installation_id = 42;
  EXPECT_EQ(validate("build_request", encode(BuildRequest{"e", "j", "checks.x.a", "/nix/store/a.drv", "x86_64-linux", "", app_repo, kRev}), err), 0)
      << err;
  StatusEvent detailed{"e", app_repo, kRev, "flurry/checks.x.a", StatusState::kPending, "Building", "", 5, "j", "building"};
  detailed.details = "the whole text";
  EXPECT_EQ(validate("status_event", encode(detailed), err), 0) << err;
  EXPECT_EQ(validate("change_event", encode(ChangeEvent{"github:1", "push", app_repo, "refs/heads/main", "main", "", kRev, kRev, "me", 1}), err), 0)
      << err;
}

TEST(Schemas, APullRequestChangeIsValidAndOneWithoutItsPullRequestIsNot) {
  std::string err;
  ChangeEvent pr{"gitlab:1", "pull_request", repo(), "refs/merge-requests/7/head", "", "", kRev, "", "me", 1};
  pr.pull_request = {7, "main", std::string(40, 'b'), "feature", "https://example.org/fork.git", true, "me", "", "T", {"x"}};
  EXPECT_EQ(validate("change_event", encode(pr), err), 0) << err;
  EXPECT_EQ(validate("change_event",
                     R"({"version":1,"id":"x","kind":"pull_request_closed","repo":{"forge":"github","owner":"o","name":"n","clone_url":"u"},"ref":"refs/pull/1/head","rev":")" +
                         kRev + R"("})",
                     err),
            1);
}

TEST(Schemas, ValidatorRejectsAWrongDocument) {
  std::string err;
  EXPECT_EQ(validate("status_event", R"({"version":1,"repo":{"forge":"github","owner":"o","name":"n","clone_url":"u"},"rev":"short","context":"c","state":"exploded"})", err), 1);
  EXPECT_NE(err.find("state"), std::string::npos);
  EXPECT_EQ(validate("build_request", R"({"version":2})", err), 1);
}
