#include "flurry/core/process.hpp"

#include <gtest/gtest.h>

using namespace flurry;
using namespace std::chrono_literals;

TEST(Process, CapturesOutputAndExitCode) {
  PosixProcessRunner r;
  auto res = r.run({.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}});
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->exit_code, 3);
  EXPECT_EQ(res->out, "out\n");
  EXPECT_EQ(res->err, "err\n");
  EXPECT_FALSE(res->ok());
}

TEST(Process, ArgumentsAreNeverInterpretedByAShell) {
  PosixProcessRunner r;
  auto res = r.run({.argv = {"echo", "$(id)", ";", "`x`"}});
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->out, "$(id) ; `x`\n");
}

TEST(Process, MissingBinaryIsAnError) {
  PosixProcessRunner r;
  auto res = r.run({.argv = {"definitely-not-a-binary-xyz"}});
  ASSERT_FALSE(res.has_value());
  EXPECT_NE(res.error().message.find("definitely-not-a-binary-xyz"), std::string::npos);
}

TEST(Process, TimeoutKillsTheWholeProcessGroup) {
  PosixProcessRunner r;
  auto start = std::chrono::steady_clock::now();
  // The grandchild holds stdout open; killing only the child would hang.
  auto res = r.run({.argv = {"sh", "-c", "sleep 30 & sleep 30"}, .timeout = 300ms});
  ASSERT_TRUE(res.has_value());
  EXPECT_TRUE(res->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(Process, SilenceTimeoutFiresWhenNoOutput) {
  PosixProcessRunner r;
  auto res = r.run({.argv = {"sh", "-c", "echo start; sleep 30"}, .silence_timeout = 300ms});
  ASSERT_TRUE(res.has_value());
  EXPECT_TRUE(res->silent_too_long);
  EXPECT_EQ(res->out, "start\n");
}

TEST(Process, StdinEnvAndCwdArePassed) {
  PosixProcessRunner r;
  auto res = r.run({.argv = {"sh", "-c", "cat; echo \"$FOO\"; pwd"}, .env = {{"FOO", "bar"}}, .cwd = "/tmp", .stdin_data = "input\n"});
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->out, "input\nbar\n/tmp\n");
}

TEST(Process, CaptureIsCappedKeepingTheTail) {
  PosixProcessRunner r;
  auto res = r.run({.argv = {"sh", "-c", "i=0; while [ $i -lt 1000 ]; do echo line$i; i=$((i+1)); done"}, .max_capture = 100});
  ASSERT_TRUE(res.has_value());
  EXPECT_TRUE(res->truncated);
  EXPECT_EQ(res->out.size(), 100u);
  EXPECT_NE(res->out.find("line999"), std::string::npos);
}

TEST(Process, MemoryCeilingKillsAChildThatGrowsPastIt) {
  PosixProcessRunner r;
  // Touches 400 MiB, then waits: past a 100 MiB ceiling it must be killed
  // well before the sleep ends.
  auto res = r.run({.argv = {"python3", "-c", "import time\nb = bytearray(400 << 20)\ntime.sleep(30)"},
                    .timeout = 20s,
                    .max_rss_bytes = std::size_t{100} << 20});
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_TRUE(res->memory_exceeded);
  EXPECT_FALSE(res->timed_out);
  EXPECT_FALSE(res->ok());
  EXPECT_GT(res->peak_rss_bytes, std::size_t{100} << 20);
  EXPECT_EQ(res->describe(), "memory ceiling exceeded");
}

TEST(Process, MemoryCeilingLeavesASmallChildAlone) {
  PosixProcessRunner r;
  auto res = r.run({.argv = {"sh", "-c", "sleep 0.3; echo done"}, .max_rss_bytes = std::size_t{100} << 20});
  ASSERT_TRUE(res.has_value());
  EXPECT_TRUE(res->ok());
  EXPECT_FALSE(res->memory_exceeded);
  EXPECT_GT(res->peak_rss_bytes, 0u);  // sampled at least once
  EXPECT_EQ(res->out, "done\n");
}
