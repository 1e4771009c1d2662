#include "eval_end.hpp"

#include <gtest/gtest.h>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/state/testing/memory_catalog.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using namespace flurry::reporter;
using msg::JobState;

namespace {

class EvalEnd : public ::testing::Test {
 protected:
  // An eval of main at `ms` whose jobs end as `ends`; returns eval.finished.
  msg::EvalFinished run(const std::string& id, std::int64_t ms, const std::map<std::string, JobState>& ends) {
    msg::ChangeEvent c;
    c.kind = "push";
    c.repo = {"github", "octo", "hello", "file:///x", "", "main"};
    c.ref = "refs/heads/main";
    state::EvalRecord e;
    e.id = id;
    e.repo = c.repo;
    e.ref = c.ref;
    e.rev = std::string(40, 'a');
    e.created_ms = ms;
    e.change = msg::encode(c);
    EXPECT_TRUE(*store.create_eval(e));
    EXPECT_TRUE(catalog.file_eval(state::filing_of(id, c, ms)).has_value());
    std::vector<state::JobSpec> specs;
    for (const auto& [attr, _] : ends) specs.push_back({id + attr, attr, "/nix/store/" + attr + ".drv", "x86_64-linux"});
    EXPECT_TRUE(store.add_jobs(id, specs, ms).has_value());
    state::Transition last;
    for (const auto& [attr, st] : ends) last = *store.finish_job(id + attr, st, "", ms + 10);
    auto stored = **store.get_eval(id);
    return {id, std::string(state::to_string(stored.state)), e.repo, e.ref, "main", "", e.rev, stored.jobs_total, stored.jobs_failed};
  }
  std::vector<msg::StatusEvent> statuses() {
    std::vector<msg::StatusEvent> out;
    for (const auto& m : bus.published("flurry.status.")) out.push_back(*msg::decode_status_event(m.data));
    return out;
  }
  state::testing::MemoryStore store;
  state::testing::MemoryCatalog catalog;
  bus::testing::MemoryBus bus;
};

}  // namespace

// Issue 15: flurry/eval says, on the commit, what a push broke or fixed.
TEST_F(EvalEnd, FlurryEvalSaysWhatChangedSinceTheEvalBefore) {
  auto first = run("e1", 100, {{"a", JobState::kSucceeded}, {"b", JobState::kSucceeded}, {"c", JobState::kFailed}});
  auto o1 = handle_eval_end(first, 1, {store, catalog, bus}, "https://ci.example");
  EXPECT_EQ(o1.result, "described");
  ASSERT_EQ(statuses().size(), 1u);
  EXPECT_EQ(statuses()[0].description, "3 jobs, 1 not successful");
  auto second = run("e2", 200, {{"a", JobState::kFailed}, {"b", JobState::kFailed}, {"c", JobState::kSucceeded}, {"d", JobState::kSucceeded}});
  EXPECT_EQ(handle_eval_end(second, 1, {store, catalog, bus}, "https://ci.example").result, "described");
  auto s = statuses().back();
  EXPECT_EQ(s.context, "flurry/eval");
  EXPECT_EQ(s.state, msg::StatusState::kSuccess);
  EXPECT_EQ(s.description, "4 jobs, 2 not successful; 2 new failures, 1 fixed");
  EXPECT_EQ(s.target_url, "https://ci.example/evals/e2");
  EXPECT_EQ(s.at_us, (**store.get_eval("e2")).finished_ms * 1000 + 3);
  // A redelivery publishes the same status (deduplicated by its id).
  EXPECT_EQ(handle_eval_end(second, 2, {store, catalog, bus}, "https://ci.example").result, "described");
  EXPECT_EQ(statuses().size(), 2u);
}

TEST_F(EvalEnd, CancelledEvalsAndEvalsWithoutJobsKeepTheirStatus) {
  auto f = run("e1", 100, {{"a", JobState::kSucceeded}});
  f.state = "cancelled";
  EXPECT_EQ(handle_eval_end(f, 1, {store, catalog, bus}, "").result, "skipped");
  state::EvalRecord broken;
  broken.id = "broken";
  broken.repo = f.repo;
  ASSERT_TRUE(*store.create_eval(broken));
  ASSERT_TRUE(store.fail_eval("broken", "error: syntax error", 5).has_value());
  msg::EvalFinished failed{"broken", "failed", f.repo, "refs/heads/main", "main", "", std::string(40, 'a'), 0, 0};
  EXPECT_EQ(handle_eval_end(failed, 1, {store, catalog, bus}, "").result, "skipped");
  EXPECT_TRUE(statuses().empty());
  auto later = run("e9", 300, {{"a", JobState::kSucceeded}});
  store.set_down(true);
  EXPECT_EQ(handle_eval_end(later, 1, {store, catalog, bus}, "").result, "retry");
  store.set_down(false);
}
