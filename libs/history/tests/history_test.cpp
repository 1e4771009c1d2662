#include "flurry/history/history.hpp"

#include <gtest/gtest.h>

#include "flurry/state/testing/memory_catalog.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using msg::JobState;

namespace {

class History : public ::testing::Test {
 protected:
  // An eval of `ref` made at `ms` whose jobs end as `ends` (attr -> state).
  state::EvalRecord eval(const std::string& id, const std::string& ref, std::int64_t ms, const std::map<std::string, JobState>& ends,
                         const std::string& pr_base = "") {
    msg::ChangeEvent c;
    c.id = "github:" + id;
    c.kind = pr_base.empty() ? "push" : "pull_request";
    c.repo = {"github", "octo", "hello", "file:///x", "", "main"};
    c.ref = ref;
    c.rev = std::string(40, 'a');
    if (!pr_base.empty()) c.pull_request = {5, pr_base, "", "topic", "", false, "me", "OWNER", "T", {}};
    state::EvalRecord e;
    e.id = id;
    e.repo = c.repo;
    e.ref = ref;
    e.rev = c.rev;
    e.created_ms = ms;
    e.change = msg::encode(c);
    EXPECT_TRUE(*store.create_eval(e));
    std::vector<state::JobSpec> specs;
    for (const auto& [attr, _] : ends) {
      state::JobSpec j;
      j.id = id + "-" + attr;
      j.attr = attr;
      j.drv_path = "/nix/store/" + attr + ".drv";
      j.system = "x86_64-linux";
      specs.push_back(j);
    }
    EXPECT_TRUE(store.add_jobs(id, specs, ms).has_value());
    for (const auto& [attr, st] : ends) {
      if (msg::is_terminal(st)) {
        EXPECT_TRUE(store.finish_job(id + "-" + attr, st, "", ms + 1).has_value());
      }
    }
    EXPECT_TRUE(catalog.file_eval(state::filing_of(id, c, ms)).has_value());
    return **store.get_eval(id);
  }
  history::Ports ports() { return {store, catalog}; }
  static std::vector<std::string> attrs(const std::vector<history::Change>& v) {
    std::vector<std::string> out;
    for (const auto& c : v) out.push_back(c.attr);
    return out;
  }
  state::testing::MemoryStore store;
  state::testing::MemoryCatalog catalog;
};

}  // namespace

TEST_F(History, APushIsComparedWithTheNewestFinishedEvalOfItsBranchBeforeIt) {
  eval("e1", "refs/heads/main", 100, {{"a", JobState::kSucceeded}, {"b", JobState::kSucceeded}, {"c", JobState::kFailed},
                                      {"gone", JobState::kSucceeded}, {"d", JobState::kFailed}});
  eval("other", "refs/heads/dev", 150, {{"a", JobState::kFailed}});
  // Unfinished (a job still queued) or cancelled evals are passed over.
  eval("e2", "refs/heads/main", 200, {{"a", JobState::kSucceeded}, {"b", JobState::kQueued}});
  auto e3 = eval("e3", "refs/heads/main", 300, {{"a", JobState::kFailed}, {"b", JobState::kSucceeded}, {"c", JobState::kSucceeded},
                                                {"new", JobState::kSucceeded}, {"d", JobState::kDependencyFailed}});
  auto c = *history::compare(ports(), e3);
  ASSERT_TRUE(c.base.has_value());
  EXPECT_EQ(c.base->id, "e1");
  EXPECT_EQ(attrs(c.newly_failing), std::vector<std::string>{"a"});
  EXPECT_EQ(c.newly_failing[0], (history::Change{"a", "e3-a", JobState::kFailed, "e1-a", JobState::kSucceeded}));
  EXPECT_EQ(attrs(c.fixed), std::vector<std::string>{"c"});
  EXPECT_EQ(attrs(c.still_failing), std::vector<std::string>{"d"});
  EXPECT_EQ(attrs(c.added), std::vector<std::string>{"new"});
  EXPECT_EQ(attrs(c.removed), std::vector<std::string>{"gone"});
  EXPECT_EQ(history::summary(c), "1 new failure, 1 fixed");
  // The first eval of a branch has no base: everything is new.
  auto first = *history::compare(ports(), **store.get_eval("e1"));
  EXPECT_FALSE(first.base.has_value());
  EXPECT_EQ(first.added.size(), 5u);
  EXPECT_EQ(history::summary(first), "");
}

TEST_F(History, APullRequestIsComparedWithTheNewestFinishedEvalOfItsBase) {
  eval("m1", "refs/heads/main", 100, {{"a", JobState::kSucceeded}, {"b", JobState::kSucceeded}, {"c", JobState::kSucceeded}});
  eval("m2", "refs/heads/main", 400, {{"a", JobState::kSucceeded}, {"b", JobState::kSucceeded}, {"c", JobState::kSucceeded}});
  auto pr = eval("p1", "refs/pull/5/head", 300, {{"a", JobState::kFailed}, {"b", JobState::kTimedOut}, {"c", JobState::kSucceeded}},
                 "main");
  auto c = *history::compare(ports(), pr);
  ASSERT_TRUE(c.base.has_value());
  EXPECT_EQ(c.base->id, "m2");  // the base as it is now
  EXPECT_EQ(attrs(c.newly_failing), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(history::summary(c), "2 new failures");
}

TEST_F(History, NothingChangedSaysNothing) {
  eval("e1", "refs/heads/main", 100, {{"a", JobState::kSucceeded}});
  auto e2 = eval("e2", "refs/heads/main", 200, {{"a", JobState::kSkipped}});
  auto c = *history::compare(ports(), e2);
  EXPECT_TRUE(c.base.has_value());
  EXPECT_TRUE(c.newly_failing.empty() && c.fixed.empty() && c.still_failing.empty() && c.added.empty() && c.removed.empty());
  EXPECT_EQ(history::summary(c), "");
}
