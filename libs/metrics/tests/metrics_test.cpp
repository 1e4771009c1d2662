#include "flurry/metrics/metrics.hpp"

#include <gtest/gtest.h>

#include "flurry/core/process.hpp"

using namespace flurry;

TEST(Metrics, SameNameAndLabelsIsTheSameSeries) {
  metrics::Registry r;
  r.counter("messages_total", "Messages handled.", {{"outcome", "ack"}}).Increment();
  r.counter("messages_total", "Messages handled.", {{"outcome", "ack"}}).Increment();
  r.counter("messages_total", "Messages handled.", {{"outcome", "nak"}}).Increment();
  auto text = r.serialize();
  EXPECT_NE(text.find("flurry_messages_total{outcome=\"ack\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("flurry_messages_total{outcome=\"nak\"} 1"), std::string::npos) << text;
}

TEST(Metrics, OutputPassesPromtool) {
  metrics::Registry r;
  r.counter("webhooks_total", "Webhooks by result.", {{"forge", "github"}, {"result", "accepted"}}).Increment();
  r.gauge("builder_busy_slots", "Busy build slots.").Set(2);
  r.histogram("build_duration_seconds", "Build durations.", {{"system", "x86_64-linux"}}).Observe(1.5);
  PosixProcessRunner p;
  auto res = p.run({.argv = {"promtool", "check", "metrics"}, .stdin_data = r.serialize()});
  ASSERT_TRUE(res.has_value()) << "promtool (Debian package prometheus) is required: " << res.error().message;
  EXPECT_EQ(res->exit_code, 0) << res->out << res->err;
}
