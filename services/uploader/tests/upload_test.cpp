#include "upload.hpp"

#include <gtest/gtest.h>

#include "flurry/nix/testing/fake_nix_runner.hpp"

using namespace flurry;
using namespace flurry::uploader;
using msg::JobState;

namespace {
msg::JobFinished finished(JobState s) {
  return {"e1", "j1", "checks.x86_64-linux.ok", "/nix/store/ok.drv", "x86_64-linux", s, {{"out", "/nix/store/ok"}, {"dev", "/nix/store/ok-dev"}}, ""};
}
}  // namespace

TEST(Upload, SuccessfulOutputsGoToEveryCacheSigned) {
  nix::testing::FakeNixRunner nix;
  UploaderConfig cfg{{"file:///cache", "s3://bucket?region=eu"}, "/keys/k.sec"};
  auto o = handle_job_finished(finished(JobState::kSucceeded), 1, nix, cfg);
  EXPECT_EQ(o.result, "uploaded");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  ASSERT_EQ(nix.copies.size(), 2u);
  EXPECT_EQ(nix.copies[0].first, "file:///cache?secret-key=/keys/k.sec");
  EXPECT_EQ(nix.copies[1].first, "s3://bucket?region=eu&secret-key=/keys/k.sec");
  EXPECT_EQ(nix.copies[0].second, (std::vector<std::string>{"/nix/store/ok-dev", "/nix/store/ok"}));
}

TEST(Upload, SkippedJobsAreUploadedToo) {
  nix::testing::FakeNixRunner nix;
  EXPECT_EQ(handle_job_finished(finished(JobState::kSkipped), 1, nix, {{"file:///c"}, ""}).result, "uploaded");
  EXPECT_EQ(nix.copies.at(0).first, "file:///c");
}

TEST(Upload, FailedAndOtherJobsAreNotUploaded) {
  nix::testing::FakeNixRunner nix;
  for (auto s : {JobState::kFailed, JobState::kDependencyFailed, JobState::kEvalFailed, JobState::kTimedOut}) {
    auto o = handle_job_finished(finished(s), 1, nix, {{"file:///c"}, ""});
    EXPECT_EQ(o.result, "skipped");
    EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  }
  EXPECT_TRUE(nix.copies.empty());
}

TEST(Upload, CopyFailureIsRetried) {
  nix::testing::FakeNixRunner nix;
  nix.copy_error = Error::rejected("error: cannot write to /cache: Permission denied");
  auto o = handle_job_finished(finished(JobState::kSucceeded), 1, nix, {{"file:///cache"}, ""});
  EXPECT_EQ(o.result, "failed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
}
