#pragma once
// The Sessions contract, as typed tests. Instantiate with a factory type
// providing `static SessionsRig make();` (a fresh, empty namespace each
// call): the memory fake in sessions_test.cpp, Redis in
// redis_sessions_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "flurry/state/sessions.hpp"

namespace flurry::state::contract {

struct SessionsRig {
  std::shared_ptr<void> owner;  // what `sessions` uses (a clock, a server); outlives it
  std::unique_ptr<Sessions> sessions;
  // Lets `d` of the store's time pass: a manual clock moved on, or a real wait.
  std::function<void(std::chrono::milliseconds)> pass;
};

template <typename Factory>
class SessionsContract : public ::testing::Test {
 protected:
  void SetUp() override { rig = Factory::make(); }

  static Session session(const std::string& id = std::string(64, 'a')) {
    Session s;
    s.id = id;
    s.forge = "github";
    s.login = "octocat";
    s.name = "The Octocat \xc3\xa9\n\"quoted\"";  // any bytes come back as given
    s.forge_user_id = "583231";
    s.access_token = "gho_16C7e42F292c6912E7710c838347Ae178B4a";
    s.csrf = std::string(64, 'c');
    s.created_ms = 1'700'000'000'000;
    s.expires_ms = 1'700'604'800'000;
    return s;
  }
  Sessions& sessions() { return *rig.sessions; }

  SessionsRig rig;
};

TYPED_TEST_SUITE_P(SessionsContract);

TYPED_TEST_P(SessionsContract, ACreatedSessionIsFoundAsGiven) {
  const auto s = this->session();
  ASSERT_TRUE(this->sessions().create(s, std::chrono::hours(1)).has_value());
  auto found = this->sessions().find(s.id);
  ASSERT_TRUE(found.has_value()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, s);
}

TYPED_TEST_P(SessionsContract, AnUnknownSessionIsNotFound) {
  ASSERT_TRUE(this->sessions().create(this->session(), std::chrono::hours(1)).has_value());
  EXPECT_FALSE(this->sessions().find(std::string(64, 'b'))->has_value());
  EXPECT_FALSE(this->sessions().find("")->has_value());
}

TYPED_TEST_P(SessionsContract, AnEmptyIdIsRefused) {
  auto r = this->sessions().create(this->session(""), std::chrono::hours(1));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
}

TYPED_TEST_P(SessionsContract, RemoveEndsASessionAndRemovingTwiceIsNoError) {
  const auto s = this->session();
  ASSERT_TRUE(this->sessions().create(s, std::chrono::hours(1)).has_value());
  ASSERT_TRUE(this->sessions().remove(s.id).has_value());
  EXPECT_FALSE(this->sessions().find(s.id)->has_value());
  EXPECT_TRUE(this->sessions().remove(s.id).has_value());
}

TYPED_TEST_P(SessionsContract, CreateReplacesASessionWithTheSameId) {
  auto s = this->session();
  ASSERT_TRUE(this->sessions().create(s, std::chrono::hours(1)).has_value());
  s.login = "hubot";
  s.name = "";
  s.access_token = "another-token";
  ASSERT_TRUE(this->sessions().create(s, std::chrono::hours(1)).has_value());
  EXPECT_EQ(**this->sessions().find(s.id), s);
}

TYPED_TEST_P(SessionsContract, ASessionEndsWhenItsTtlRunsOut) {
  const auto s = this->session();
  ASSERT_TRUE(this->sessions().create(s, std::chrono::milliseconds(1500)).has_value());
  this->rig.pass(std::chrono::milliseconds(200));
  EXPECT_TRUE(this->sessions().find(s.id)->has_value());
  this->rig.pass(std::chrono::milliseconds(1500));
  EXPECT_FALSE(this->sessions().find(s.id)->has_value());
}

TYPED_TEST_P(SessionsContract, AStateIsTakenOnce) {
  ASSERT_TRUE(this->sessions().put_state("s1", "github\n/evals/1", std::chrono::minutes(10)).has_value());
  EXPECT_FALSE(this->sessions().take_state("s2")->has_value());
  auto first = this->sessions().take_state("s1");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->value_or(""), "github\n/evals/1");
  EXPECT_FALSE(this->sessions().take_state("s1")->has_value());
}

TYPED_TEST_P(SessionsContract, AStateEndsWhenItsTtlRunsOut) {
  ASSERT_TRUE(this->sessions().put_state("s1", "data", std::chrono::milliseconds(1000)).has_value());
  this->rig.pass(std::chrono::milliseconds(1500));
  EXPECT_FALSE(this->sessions().take_state("s1")->has_value());
}

TYPED_TEST_P(SessionsContract, StatesAndSessionsDoNotMix) {
  const auto s = this->session("shared-name");
  ASSERT_TRUE(this->sessions().put_state(s.id, "data", std::chrono::minutes(1)).has_value());
  EXPECT_FALSE(this->sessions().find(s.id)->has_value());
  ASSERT_TRUE(this->sessions().create(s, std::chrono::hours(1)).has_value());
  EXPECT_EQ(this->sessions().take_state(s.id)->value_or(""), "data");
  EXPECT_TRUE(this->sessions().find(s.id)->has_value());
}

// A state stands for one sign-in: of many callbacks racing with it, one wins.
TYPED_TEST_P(SessionsContract, ConcurrentTakesOfOneStateGiveItToExactlyOne) {
  for (int round = 0; round < 10; ++round) {
    const auto state = "race-" + std::to_string(round);
    ASSERT_TRUE(this->sessions().put_state(state, "data", std::chrono::minutes(1)).has_value());
    std::atomic<int> winners{0}, errors{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&] {
        auto r = this->sessions().take_state(state);
        if (!r) ++errors;
        else if (r->has_value()) ++winners;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(winners.load(), 1) << "round " << round;
  }
}

REGISTER_TYPED_TEST_SUITE_P(SessionsContract, ACreatedSessionIsFoundAsGiven, AnUnknownSessionIsNotFound, AnEmptyIdIsRefused,
                            RemoveEndsASessionAndRemovingTwiceIsNoError, CreateReplacesASessionWithTheSameId,
                            ASessionEndsWhenItsTtlRunsOut, AStateIsTakenOnce, AStateEndsWhenItsTtlRunsOut,
                            StatesAndSessionsDoNotMix, ConcurrentTakesOfOneStateGiveItToExactlyOne);

}  // namespace flurry::state::contract
