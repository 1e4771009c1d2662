#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flurry/messages/messages.hpp"
#include "flurry/messages/subjects.hpp"

using namespace flurry;
using namespace flurry::msg;

namespace {
Repo sample_repo() {
  return {"github", "octo", "hello", "https://github.com/octo/hello.git", "https://github.com/octo/hello", "main"};
}
}  // namespace

TEST(Codec, ChangeEventRoundTrips) {
  ChangeEvent e{"github:abc", "push", sample_repo(), "refs/heads/main", "main", "",
                std::string(40, 'a'), std::string(40, 'b'), "octocat", 123};
  auto d = decode_change_event(encode(e));
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(*d, e);
}

TEST(Codec, PullRequestChangesRoundTrip) {
  for (const char* kind : {"pull_request", "pull_request_closed"}) {
    ChangeEvent e{"github:pr", kind, sample_repo(), "refs/pull/12/head", "", "", std::string(40, 'a'), "", "octocat", 5};
    e.pull_request = {12, "main", std::string(40, 'b'), "topic", "https://github.com/fork/hello.git", true, "octocat",
                      "FIRST_TIME_CONTRIBUTOR", "Fix \"it\"", {"safe to test", "ci"}};
    auto d = decode_change_event(encode(e));
    ASSERT_TRUE(d.has_value()) << d.error().message;
    EXPECT_EQ(*d, e);
    EXPECT_TRUE(d->is_pull_request());
  }
}

TEST(Codec, ApprovalsRoundTripWithoutAHead) {
  ChangeEvent e{"github:ap", "approve", sample_repo(), "refs/pull/3/head", "", "", "", "", "maintainer", 5};
  e.pull_request.number = 3;
  e.approval = {"maintainer", "MEMBER"};
  auto d = decode_change_event(encode(e));
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(*d, e);
  e.kind = "push";  // only an approval may lack its commit
  EXPECT_FALSE(decode_change_event(encode(e)).has_value());
}

TEST(Codec, RerunsRoundTrip) {
  ChangeEvent e{"github:rr", "rerun", sample_repo(), "refs/heads/main", "main", "", std::string(40, 'a'), "", "octocat", 5};
  e.rerun.job_id = "e1-j1";
  auto d = decode_change_event(encode(e));
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(*d, e);
}

// The change a re-run evaluates again keeps what it re-ran: its eval
// says it was a re-run.
TEST(Codec, AChangeEvaluatedAgainKeepsWhatItReRan) {
  ChangeEvent e{"github:web-rerun-1", "push", sample_repo(), "refs/heads/main", "main", "", std::string(40, 'a'), "", "mona", 5};
  e.rerun = {"e1-j1", "e1"};
  auto d = decode_change_event(encode(e));
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(*d, e);
  e.rerun = {};
  EXPECT_EQ(encode(e).find("\"rerun\""), std::string::npos);
}

TEST(Codec, ChangeEventsOfUnknownKindOrWithoutTheirPullRequestArePoison) {
  ChangeEvent e{"github:x", "merge_train", sample_repo(), "refs/heads/main", "main", "", std::string(40, 'a'), "", "", 0};
  auto unknown = decode_change_event(encode(e));
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kPoison);
  EXPECT_NE(unknown.error().message.find("merge_train"), std::string::npos);
  e.kind = "pull_request";  // number 0: encoded without a pull_request
  auto bare = decode_change_event(encode(e));
  ASSERT_FALSE(bare.has_value());
  EXPECT_NE(bare.error().message.find("pull_request"), std::string::npos);
  auto j = nlohmann::json::parse(encode(e));
  j["pull_request"] = {{"number", 3}, {"base_branch", "main"}, {"base_rev", "short"}};
  auto bad_base = decode_change_event(j.dump());
  ASSERT_FALSE(bad_base.has_value());
  EXPECT_NE(bad_base.error().message.find("base_rev"), std::string::npos);
  j["pull_request"] = {{"number", 3}, {"base_branch", "main"}, {"labels", {1, 2}}};
  EXPECT_FALSE(decode_change_event(j.dump()).has_value());
}

TEST(Codec, EveryMessageRoundTrips) {
  BuildRequest b{"e1", "j1", "checks.x86_64-linux.ok", "/nix/store/x.drv", "x86_64-linux", ""};
  EXPECT_EQ(*decode_build_request(encode(b)), b);
  JobFinished f{"e1", "j1", "a", "/nix/store/x.drv", "x86_64-linux", JobState::kDependencyFailed, {{"out", "/nix/store/o"}}, ""};
  EXPECT_EQ(*decode_job_finished(encode(f)), f);
  EvalFinished ef{"e1", "succeeded", sample_repo(), "refs/heads/main", "main", "", std::string(40, 'c'), 5, 2};
  EXPECT_EQ(*decode_eval_finished(encode(ef)), ef);
  StatusEvent s{"e1", sample_repo(), std::string(40, 'c'), "flurry/eval", StatusState::kFailure, "d", "http://x", 42};
  EXPECT_EQ(*decode_status_event(encode(s)), s);
  StatusEvent job{"e1", sample_repo(), std::string(40, 'c'), "flurry/checks.x.a", StatusState::kFailure, "d", "", 43, "j1", "timed_out"};
  EXPECT_EQ(*decode_status_event(encode(job)), job);
  auto bad = nlohmann::json::parse(encode(job));
  bad["job_state"] = "exploded";
  EXPECT_FALSE(decode_status_event(bad.dump()).has_value());
  // What issue 14 added: a request's repository and commit, an App
  // installation, a status's details.
  BuildRequest carrying{"e1", "j1", "checks.x86_64-linux.ok", "/nix/store/x.drv", "x86_64-linux", "", sample_repo(), std::string(40, 'c')};
  carrying.repo.installation_id = 987654321012;
  EXPECT_EQ(*decode_build_request(encode(carrying)), carrying);
  StatusEvent detailed = job;
  detailed.details = "error: attribute 'x' missing\n       at flake.nix:3:5";
  detailed.repo.installation_id = 42;
  EXPECT_EQ(*decode_status_event(encode(detailed)), detailed);
  auto negative = nlohmann::json::parse(encode(carrying));
  negative["repo"]["installation_id"] = -1;
  EXPECT_FALSE(decode_build_request(negative.dump()).has_value());
  auto too_long = detailed;
  too_long.details = std::string(kMaxStatusDetails + 1, 'x');
  EXPECT_EQ(decode_status_event(encode(too_long)).error().code, ErrorCode::kPoison);
  DeadLetter dl{"builder", "flurry.build.x", "bad json", 3, "{not json"};
  EXPECT_EQ(*decode_dead_letter(encode(dl)), dl);
  // Bytes that are not UTF-8 are kept exactly (base64), not replaced.
  DeadLetter binary{"builder", "flurry.build.x", "bad json", 1, std::string("\xff\xfe\0\x01{", 5)};
  EXPECT_NE(encode(binary).find("data_base64"), std::string::npos);
  EXPECT_EQ(*decode_dead_letter(encode(binary)), binary);
}

TEST(Codec, UnknownVersionIsPoison) {
  auto j = nlohmann::json::parse(encode(BuildRequest{"e", "j", "a", "d", "s", ""}));
  j["version"] = 99;
  auto d = decode_build_request(j.dump());
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, ErrorCode::kPoison);
  EXPECT_NE(d.error().message.find("version"), std::string::npos);
}

TEST(Codec, MalformedOrTruncatedJsonIsPoison) {
  for (std::string bad : {"", "{", "[]", "null", "{\"version\":1", "{\"version\":\"1\"}"}) {
    auto d = decode_change_event(bad);
    ASSERT_FALSE(d.has_value()) << bad;
    EXPECT_EQ(d.error().code, ErrorCode::kPoison);
  }
}

TEST(Codec, MissingOrMistypedFieldsAreNamed) {
  auto d = decode_build_request(R"({"version":1,"eval_id":"e","job_id":"j","attr":"a","system":"s"})");
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message.find("drv_path"), std::string::npos);
  auto c = decode_change_event(R"({"version":1,"id":"x","kind":"push","repo":{"forge":1},"ref":"r","rev":"r"})");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("forge"), std::string::npos);
}

TEST(Codec, ChangeEventRevMustBeFullSha) {
  ChangeEvent e{"github:abc", "push", sample_repo(), "refs/heads/main", "main", "", "abc123", "", "", 0};
  auto d = decode_change_event(encode(e));
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message.find("rev"), std::string::npos);
}

TEST(Codec, UnknownJobStateIsPoison) {
  auto j = nlohmann::json::parse(encode(JobFinished{"e", "j", "a", "d", "s", JobState::kFailed, {}, ""}));
  j["state"] = "exploded";
  EXPECT_FALSE(decode_job_finished(j.dump()).has_value());
}

TEST(Subjects, TokensCannotEscapeTheirLevel) {
  EXPECT_EQ(subjects::build("x86_64-linux"), "flurry.build.x86_64-linux");
  EXPECT_EQ(subjects::build("a.b>*"), "flurry.build.a_b__");
  EXPECT_EQ(subjects::status(""), "flurry.status._");
}

TEST(Subjects, BuildsNeedingSystemFeaturesHaveTheirOwnSubject) {
  EXPECT_EQ(subjects::build("x86_64-linux", {}), "flurry.build.x86_64-linux");
  EXPECT_EQ(subjects::build("x86_64-linux", {"nixos-test", "kvm", "kvm"}), "flurry.build.x86_64-linux.kvm+nixos-test");
  // A hostile feature name stays inside its level and cannot add a feature.
  EXPECT_EQ(subjects::build("x86_64-linux", {"a.b>", "c+d"}), "flurry.build.x86_64-linux.a_b_+c_d");
  EXPECT_EQ(subjects::build_features("flurry.build.x86_64-linux.kvm+nixos-test", "x86_64-linux"),
            (std::vector<std::string>{"kvm", "nixos-test"}));
  EXPECT_EQ(subjects::build_features("flurry.build.x86_64-linux", "x86_64-linux"), std::vector<std::string>{});
  EXPECT_EQ(subjects::build_features("flurry.build.x86_64-linuxx.kvm", "x86_64-linux"), std::nullopt);
  EXPECT_EQ(subjects::build_features("flurry.build.aarch64-linux.kvm", "x86_64-linux"), std::nullopt);
  EXPECT_EQ(subjects::build_features("flurry.build.x86_64-linux.kvm.x", "x86_64-linux"), std::nullopt);
  EXPECT_EQ(subjects::durable("builder-x86_64-linux-a/b\\c.d"), "builder-x86_64-linux-a_b_c_d");
}

TEST(JobStates, MapToForgeStates) {
  EXPECT_EQ(status_for(JobState::kSkipped), StatusState::kSuccess);
  EXPECT_EQ(status_for(JobState::kDependencyFailed), StatusState::kFailure);
  EXPECT_EQ(status_for(JobState::kCancelled), StatusState::kError);
  EXPECT_EQ(status_for(JobState::kQueued), StatusState::kPending);
  for (auto s : {JobState::kQueued, JobState::kEvalFailed, JobState::kUnsupportedSystem}) {
    EXPECT_EQ(parse_job_state(to_string(s)), s);
  }
}

TEST(ApproveCommand, IsALineOfItsOwn) {
  EXPECT_TRUE(is_approve_command("/flurry approve"));
  EXPECT_TRUE(is_approve_command("Looks fine.\r\n  /Flurry Approve  \r\nthanks"));
  EXPECT_FALSE(is_approve_command("please /flurry approve this"));
  EXPECT_FALSE(is_approve_command("/flurry approved"));
  EXPECT_FALSE(is_approve_command(""));
}
