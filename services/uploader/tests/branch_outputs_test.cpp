#include "branch_outputs.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "flurry/nix/testing/fake_nix_runner.hpp"
#include "flurry/state/testing/memory_store.hpp"
#include "flurry/test/servers.hpp"
#include "upload.hpp"

using namespace flurry;
using namespace flurry::uploader;
using msg::JobState;
namespace fs = std::filesystem;

namespace {

state::EvalRecord eval_of(const std::string& branch) {
  state::EvalRecord e;
  e.id = "e1";
  e.repo = {"gitlab", "group/sub", "hello", "", "", "main"};
  e.branch = branch;
  e.ref = branch.empty() ? "refs/tags/v1" : "refs/heads/" + branch;
  e.rev = std::string(40, 'a');
  return e;
}

msg::JobFinished job(const std::string& attr = "checks.x86_64-linux.ok") {
  return {"e1", "j1", attr, "/nix/store/ok.drv", "x86_64-linux", JobState::kSucceeded,
          {{"out", "/nix/store/aaaa-ok"}, {"doc", "/nix/store/bbbb-ok-doc"}}, ""};
}

class BranchOutputs : public ::testing::Test {
 protected:
  BranchOutputsConfig cfg() { return {tmp.file("gcroots"), tmp.file("outputs"), {{"releases", "release-*", true, false}}}; }
  test::TempDir tmp{"flurry-branch-outputs"};
};

}  // namespace

TEST_F(BranchOutputs, TheDefaultBranchGetsGcrootsAndOutputsFiles) {
  auto r = keep_branch_outputs(job(), eval_of("main"), cfg());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->gcroots, 2);
  EXPECT_EQ(r->outputs, 2);
  const auto root = tmp.file("gcroots") + "/gitlab/group/sub/hello/main/checks.x86_64-linux.ok";
  EXPECT_EQ(fs::read_symlink(root).string(), "/nix/store/aaaa-ok");
  EXPECT_EQ(fs::read_symlink(root + "-doc").string(), "/nix/store/bbbb-ok-doc");
  EXPECT_EQ(read_file(tmp.file("outputs") + "/gitlab/group/sub/hello/main/checks.x86_64-linux.ok").value_or(""), "/nix/store/aaaa-ok\n");
  // Again (a redelivery, or the next push): replaced, nothing left behind.
  auto again = job();
  again.outputs = {{"out", "/nix/store/cccc-ok"}};
  ASSERT_TRUE(keep_branch_outputs(again, eval_of("main"), cfg()).has_value());
  EXPECT_EQ(fs::read_symlink(root).string(), "/nix/store/cccc-ok");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(fs::path(root).parent_path())) ++entries;
  EXPECT_EQ(entries, 2);  // the two roots, no temporary files
}

TEST_F(BranchOutputs, OtherBranchesFollowTheirRuleAndTagsGetNothing) {
  auto release = keep_branch_outputs(job(), eval_of("release-1"), cfg());
  ASSERT_TRUE(release.has_value());
  EXPECT_EQ(release->gcroots, 2);
  EXPECT_EQ(release->outputs, 0);  // the rule says no outputs files
  EXPECT_FALSE(fs::exists(tmp.file("outputs") + "/gitlab/group/sub/hello/release-1"));
  auto feature = keep_branch_outputs(job(), eval_of("feature"), cfg());
  ASSERT_TRUE(feature.has_value());
  EXPECT_EQ(feature->gcroots + feature->outputs, 0);
  EXPECT_EQ(feature->why, "no branch rule matches");
  auto tag = keep_branch_outputs(job(), eval_of(""), cfg());
  EXPECT_EQ(tag->gcroots + tag->outputs, 0);
}

TEST_F(BranchOutputs, HostileNamesStayInsideTheDirectoryAndDistinct) {
  auto e = eval_of("main");
  e.repo.owner = "../../etc";
  e.repo.name = "..";
  e.repo.default_branch = "../x/y";
  e.branch = "../x/y";
  ASSERT_TRUE(keep_branch_outputs(job("checks.x86_64-linux.\"a/../b\""), e, cfg()).has_value());
  const auto base = fs::weakly_canonical(tmp.file("gcroots")).string();
  for (const auto& entry : fs::recursive_directory_iterator(tmp.path())) {
    EXPECT_EQ(fs::weakly_canonical(entry.path()).string().rfind(tmp.path(), 0), 0u) << entry.path();
  }
  const auto p = branch_output_path(tmp.file("gcroots"), e, "checks.x", "out");
  EXPECT_EQ(p.rfind(base, 0), 0u) << p;
  EXPECT_EQ(p.find("/../"), std::string::npos) << p;
  // "a/b" and "a_b" are different branches with different paths.
  auto slash = eval_of("a/b"), underscore = eval_of("a_b");
  EXPECT_NE(branch_output_path("/d", slash, "x", "out"), branch_output_path("/d", underscore, "x", "out"));
}

TEST_F(BranchOutputs, TheUploaderWritesThemForSuccessfulJobsOfKnownEvals) {
  nix::testing::FakeNixRunner nix;
  state::testing::MemoryStore store;
  ASSERT_TRUE(*store.create_eval(eval_of("main")));
  UploaderConfig c{{"file:///cache"}, "", cfg()};
  auto o = handle_job_finished(job(), 1, nix, c, &store);
  EXPECT_EQ(o.result, "uploaded");
  EXPECT_EQ(o.gcroots, 2);
  EXPECT_EQ(o.outputs, 2);
  // Unwritable directories: a warning, the upload stands.
  c.branch_outputs.gcroots_dir = "/proc/flurry-cannot-write-here";
  auto w = handle_job_finished(job(), 1, nix, c, &store);
  EXPECT_EQ(w.result, "uploaded");
  EXPECT_EQ(w.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_FALSE(w.warning.empty());
  // The store down: retried (the branch cannot be known).
  store.set_down(true);
  EXPECT_EQ(handle_job_finished(job(), 1, nix, c, &store).disposition.kind, bus::Disposition::Kind::kNak);
}
