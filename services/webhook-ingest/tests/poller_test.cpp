// The poller on fakes: FakeGit's heads are the remote, MemoryBus the stream.
#include "poller.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/git/testing/fake_git.hpp"

using namespace flurry;
using namespace flurry::ingest;
using namespace std::chrono_literals;

namespace {

const std::string kA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string kB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const std::string kC = "cccccccccccccccccccccccccccccccccccccccc";
const std::string kUrl = "https://bot:s3cret@git.example.org/team/hello.git";

PolledRepo hello() { return {"hello", kUrl, "main", 30s}; }
std::vector<repo::BranchRule> release_rule() { return {{"releases", "release-*", true, false}}; }

class PollerTest : public ::testing::Test {
 protected:
  Poller make() { return Poller(hello(), release_rule(), {git, bus, clock}); }
  // Change events published since the last call.
  std::vector<msg::ChangeEvent> fresh() {
    std::vector<msg::ChangeEvent> out;
    auto all = bus.published("flurry.change.");
    for (std::size_t i = taken; i < all.size(); ++i) {
      EXPECT_EQ(all[i].subject, "flurry.change.git");
      auto c = msg::decode_change_event(all[i].data);
      if (!c) throw std::runtime_error("undecodable change: " + c.error().message);
      EXPECT_EQ(all[i].msg_id, c->id);
      out.push_back(*c);
    }
    taken = all.size();
    return out;
  }
  git::testing::FakeGit git;
  bus::testing::MemoryBus bus;
  ManualClock clock{5000};
  std::size_t taken = 0;
};

}  // namespace

TEST_F(PollerTest, FirstPollPublishesTheDefaultBranchAndRuleMatchingBranchesOnly) {
  git.heads = {{"main", kA}, {"release-1", kB}, {"feature/x", kC}};
  auto p = make();
  auto o = p.poll();
  EXPECT_EQ(o.result, "changed");
  EXPECT_TRUE(o.errors.empty());
  ASSERT_EQ(o.published.size(), 2u);
  EXPECT_EQ(git.listed, std::vector<std::string>{kUrl});
  auto changes = fresh();
  ASSERT_EQ(changes.size(), 2u);
  const auto& main = changes[0].branch == "main" ? changes[0] : changes[1];
  const auto& release = changes[0].branch == "main" ? changes[1] : changes[0];
  EXPECT_EQ(main.id, poll_change_id("hello", "main", kA));
  EXPECT_EQ(main.kind, "push");
  EXPECT_EQ(main.repo, (msg::Repo{"git", "poll", "hello", kUrl, "", "main"}));
  EXPECT_EQ(main.ref, "refs/heads/main");
  EXPECT_EQ(main.rev, kA);
  EXPECT_EQ(main.before, "");
  EXPECT_EQ(main.tag, "");
  EXPECT_EQ(main.sender, "poller");
  EXPECT_EQ(main.received_at_ms, 5000);
  EXPECT_FALSE(main.is_pull_request());
  EXPECT_EQ(release.branch, "release-1");
  EXPECT_EQ(release.ref, "refs/heads/release-1");
  EXPECT_EQ(release.rev, kB);
  EXPECT_EQ(o.published, (std::vector<std::string>{changes[0].id, changes[1].id}));
}

TEST_F(PollerTest, AnUnchangedRemotePublishesNothing) {
  git.heads = {{"main", kA}};
  auto p = make();
  ASSERT_EQ(p.poll().result, "changed");
  fresh();
  auto o = p.poll();
  EXPECT_EQ(o.result, "unchanged");
  EXPECT_TRUE(o.published.empty());
  EXPECT_TRUE(fresh().empty());
  // A branch no rule selects moving changes nothing either.
  git.heads["wip"] = kB;
  EXPECT_EQ(p.poll().result, "unchanged");
  git.heads["wip"] = kC;
  EXPECT_EQ(p.poll().result, "unchanged");
  EXPECT_TRUE(fresh().empty());
}

TEST_F(PollerTest, AMovedHeadIsPublishedWithThePreviousHeadAsBefore) {
  git.heads = {{"main", kA}, {"release-1", kB}};
  auto p = make();
  p.poll();
  fresh();
  git.heads["main"] = kC;
  clock.advance_ms(30'000);
  auto o = p.poll();
  EXPECT_EQ(o.result, "changed");
  auto changes = fresh();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].branch, "main");
  EXPECT_EQ(changes[0].rev, kC);
  EXPECT_EQ(changes[0].before, kA);
  EXPECT_EQ(changes[0].received_at_ms, 35'000);
  EXPECT_EQ(changes[0].id, poll_change_id("hello", "main", kC));
}

TEST_F(PollerTest, AFailedPublishIsRetriedNextPoll) {
  git.heads = {{"main", kA}};
  auto p = make();
  bus.fail_next_publishes(1);
  auto o = p.poll();
  EXPECT_EQ(o.result, "failed");
  ASSERT_EQ(o.errors.size(), 1u);
  EXPECT_NE(o.errors[0].find("cannot publish"), std::string::npos) << o.errors[0];
  EXPECT_TRUE(o.published.empty());
  EXPECT_TRUE(fresh().empty());
  auto again = p.poll();
  EXPECT_EQ(again.result, "changed");
  auto changes = fresh();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].rev, kA);
  EXPECT_EQ(changes[0].before, "");
  EXPECT_EQ(p.poll().result, "unchanged");
}

TEST_F(PollerTest, AFailedPublishOfOneBranchDoesNotHoldBackTheOthers) {
  git.heads = {{"main", kA}, {"release-1", kB}};
  auto p = make();
  bus.fail_next_publishes(1);  // main's (branches go in name order)
  auto o = p.poll();
  EXPECT_EQ(o.result, "failed");
  ASSERT_EQ(o.published, std::vector<std::string>{poll_change_id("hello", "release-1", kB)});
  auto retried = p.poll();
  EXPECT_EQ(retried.published, std::vector<std::string>{poll_change_id("hello", "main", kA)});
}

TEST_F(PollerTest, AFailedListingIsReportedAndChangesNothing) {
  git.heads = {{"main", kA}};
  auto p = make();
  p.poll();
  fresh();
  git.remote_heads_error = Error::transient("cannot list the branches of https://***@git.example.org/team/hello.git: timed out");
  auto o = p.poll();
  EXPECT_EQ(o.result, "failed");
  ASSERT_EQ(o.errors.size(), 1u);
  EXPECT_EQ(o.errors[0].find("s3cret"), std::string::npos);
  git.remote_heads_error.reset();
  // The heads seen before the failure are still known: nothing to publish.
  EXPECT_EQ(p.poll().result, "unchanged");
  EXPECT_TRUE(fresh().empty());
}

TEST_F(PollerTest, AVanishedBranchIsForgottenAndRepublishedWhenItComesBack) {
  git.heads = {{"main", kA}, {"release-1", kB}};
  auto p = make();
  p.poll();
  fresh();
  git.heads.erase("release-1");
  EXPECT_EQ(p.poll().result, "unchanged");
  // Back at another head: published, with no previous head (it was forgotten).
  git.heads["release-1"] = kC;
  auto o = p.poll();
  EXPECT_EQ(o.result, "changed");
  auto changes = fresh();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].branch, "release-1");
  EXPECT_EQ(changes[0].rev, kC);
  EXPECT_EQ(changes[0].before, "");
  // Gone and back at the head it had before: published again under the
  // same change id (JetStream's dedupe and the evaluator keep it one eval).
  git.heads.erase("release-1");
  p.poll();
  git.heads["release-1"] = kB;
  auto back = p.poll();
  EXPECT_EQ(back.published, std::vector<std::string>{poll_change_id("hello", "release-1", kB)});
  EXPECT_TRUE(fresh().empty());  // the bus deduplicated it by msg id
}

TEST_F(PollerTest, HeadsThatAreNotLowerCase40HexAreSkippedAndReportedOnce) {
  git.heads = {{"main", "not-a-sha"}, {"release-1", std::string(40, 'B')}, {"release-2", std::string(64, 'a')}, {"release-3", kC}};
  auto p = make();
  auto o = p.poll();
  EXPECT_EQ(o.result, "changed");
  EXPECT_EQ(o.skipped.size(), 3u);
  auto changes = fresh();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].branch, "release-3");
  // Still bad: not reported again.
  auto again = p.poll();
  EXPECT_TRUE(again.skipped.empty());
  EXPECT_EQ(again.result, "unchanged");
  // Fixed: published.
  git.heads["main"] = kA;
  auto fixed = p.poll();
  EXPECT_EQ(fixed.published, std::vector<std::string>{poll_change_id("hello", "main", kA)});
}

TEST_F(PollerTest, BranchNamesWithControlCharactersAreSkipped) {
  git.heads = {{"release-\n1", kA}, {"main", kB}};
  auto p = make();
  auto o = p.poll();
  EXPECT_EQ(o.published, std::vector<std::string>{poll_change_id("hello", "main", kB)});
  ASSERT_EQ(o.skipped.size(), 1u);
}

TEST_F(PollerTest, ChangeIdsAreDeterministicAcrossPollersAndSafeAsMessageIds) {
  git.heads = {{"main", kA}, {"release-$(x) y", kB}};
  auto first = make();
  auto second = make();  // another ingest instance, or this one after a restart
  auto a = first.poll();
  clock.advance_ms(1234);
  auto b = second.poll();
  EXPECT_EQ(a.published, b.published);
  EXPECT_EQ(a.published.size(), 2u);
  // JetStream's msg-id dedupe made the second instance's publishes no-ops.
  EXPECT_EQ(fresh().size(), 2u);
  for (const auto& id : a.published) {
    ASSERT_EQ(id.size(), 4u + 32u) << id;
    EXPECT_EQ(id.substr(0, 4), "git:");
    for (char c : id.substr(4)) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
  }
  EXPECT_NE(poll_change_id("hello", "main", kA), poll_change_id("hello", "main", kB));
  EXPECT_NE(poll_change_id("hello", "main", kA), poll_change_id("other", "main", kA));
  EXPECT_NE(poll_change_id("hello", "main", kA), poll_change_id("hello", "mai", "n" + kA));
}

TEST_F(PollerTest, WithoutBranchRulesOnlyTheDefaultBranchBuilds) {
  git.heads = {{"trunk", kA}, {"main", kB}, {"release-1", kC}};
  Poller p(PolledRepo{"hello", kUrl, "trunk", 30s}, {}, {git, bus, clock});
  EXPECT_EQ(p.poll().published, std::vector<std::string>{poll_change_id("hello", "trunk", kA)});
}

TEST(PollDelay, TheFirstPollComesWithinTheJitterLaterOnesAfterTheIntervalPlusJitter) {
  auto fixed = [](double u) { return [u] { return u; }; };
  EXPECT_EQ(next_poll_delay(60s, 10s, true, fixed(0.0)), 0ms);
  EXPECT_EQ(next_poll_delay(60s, 10s, true, fixed(0.5)), 5000ms);
  EXPECT_EQ(next_poll_delay(60s, 10s, false, fixed(0.0)), 60s);
  EXPECT_EQ(next_poll_delay(60s, 10s, false, fixed(0.25)), 62500ms);
  // Always below interval + jitter, even for a source that misbehaves.
  EXPECT_EQ(next_poll_delay(60s, 10s, false, fixed(0.99999999)), 69999ms);
  EXPECT_EQ(next_poll_delay(60s, 10s, false, fixed(1.0)), 69999ms);
  EXPECT_EQ(next_poll_delay(60s, 10s, false, fixed(7.0)), 69999ms);
  EXPECT_EQ(next_poll_delay(60s, 10s, false, fixed(-1.0)), 60s);
  // No jitter: exactly the interval (and the first poll at once); the
  // random source is not even asked.
  auto never = []() -> double { throw std::logic_error("asked"); };
  EXPECT_EQ(next_poll_delay(60s, 0ms, false, never), 60s);
  EXPECT_EQ(next_poll_delay(60s, 0ms, true, never), 0ms);
  // Spread over the whole window.
  std::uint64_t state = 42;
  auto lcg = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / 9007199254740992.0;
  };
  std::chrono::milliseconds lo = 1h, hi = 0ms;
  for (int i = 0; i < 1000; ++i) {
    auto d = next_poll_delay(1s, 1s, false, lcg);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    ASSERT_GE(d, 1s);
    ASSERT_LT(d, 2s);
  }
  EXPECT_LT(lo, 1100ms);
  EXPECT_GT(hi, 1900ms);
}

TEST(PollConfig, ReadsPollTablesWithDefaults) {
  auto c = Config::from_string(R"(
[webhook-ingest]
poll_interval = "2m"
poll_jitter = "3s"

[poll.hello]
url = "https://git.example.org/hello.git"

[poll.infra-2]
url = "git@git.example.org:infra.git"
default_branch = "trunk"
interval = "30s"
)");
  auto pc = read_poll_config(c);
  EXPECT_EQ(pc.jitter, 3s);
  EXPECT_EQ(pc.allowed_url_schemes, (std::vector<std::string>{"https", "ssh", "git"}));
  ASSERT_EQ(pc.repos.size(), 2u);
  std::map<std::string, PolledRepo> by_name;
  for (const auto& r : pc.repos) by_name[r.name] = r;
  EXPECT_EQ(by_name["hello"].url, "https://git.example.org/hello.git");
  EXPECT_EQ(by_name["hello"].default_branch, "main");
  EXPECT_EQ(by_name["hello"].interval, 2min);
  EXPECT_EQ(by_name["infra-2"].default_branch, "trunk");
  EXPECT_EQ(by_name["infra-2"].interval, 30s);

  auto defaults = read_poll_config(Config::from_string("[poll.a]\nurl = \"https://h/a.git\"\n"));
  EXPECT_EQ(defaults.jitter, 10s);
  EXPECT_EQ(defaults.repos.at(0).interval, 60s);
  EXPECT_TRUE(read_poll_config(Config::from_string("")).repos.empty());
}

TEST(PollConfig, BadPollConfigIsRefused) {
  for (std::string bad : {
           "[poll.a]\ndefault_branch = \"main\"\n",                                        // no url
           "[poll.a]\nurl = \"https://h/a.git\"\ninterval = \"soon\"\n",                   // bad duration
           "[poll.a]\nurl = \"https://h/a.git\"\ninterval = \"10x\"\n",                    // bad unit
           "[poll.a]\nurl = \"https://h/a.git\"\ninterval = \"100ms\"\n",                  // too short
           "[poll.a]\nurl = \"https://h/a.git\"\nintervall = \"1m\"\n",                    // typo
           "[poll.a]\nurl = \"file:///srv/a.git\"\n",                                      // scheme not allowed
           "[poll.a]\nurl = \"ext::sh -c x\"\n",                                           // remote helper
           "[poll.a]\nurl = \"https://h/a.git\"\ndefault_branch = \"\"\n",                 // no default branch
           "[poll.\"a b\"]\nurl = \"https://h/a.git\"\n",                                  // bad name
           "[poll.\"a.b\"]\nurl = \"https://h/a.git\"\n",                                  // dotted name
           "[webhook-ingest]\npoll_jitter = \"-1s\"\n[poll.a]\nurl = \"https://h/a.git\"\n",  // negative jitter
           "[webhook-ingest]\npoll_interval = \"x\"\n",                                    // bad default interval
       }) {
    EXPECT_THROW(read_poll_config(Config::from_string(bad)), ConfigError) << bad;
  }
  auto file_ok = Config::from_string("[webhook-ingest]\nallowed_url_schemes = [\"file\"]\n[poll.a]\nurl = \"file:///srv/a.git\"\n");
  EXPECT_EQ(read_poll_config(file_ok).repos.size(), 1u);
}
