#include "flurry/metrics/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace flurry::metrics {

Registry::Registry() : registry_(std::make_shared<prometheus::Registry>()) {}

prometheus::Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& fam = counters_[name];
  if (!fam) fam = &prometheus::BuildCounter().Name("flurry_" + name).Help(help).Register(*registry_);
  return fam->Add(labels);
}

prometheus::Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& fam = gauges_[name];
  if (!fam) fam = &prometheus::BuildGauge().Name("flurry_" + name).Help(help).Register(*registry_);
  return fam->Add(labels);
}

prometheus::Histogram& Registry::histogram(const std::string& name, const std::string& help, const Labels& labels,
                                           const std::vector<double>& buckets) {
  std::lock_guard lock(mu_);
  auto& fam = histograms_[name];
  if (!fam) fam = &prometheus::BuildHistogram().Name("flurry_" + name).Help(help).Register(*registry_);
  return fam->Add(labels, prometheus::Histogram::BucketBoundaries(buckets));
}

std::string Registry::serialize() const {
  prometheus::TextSerializer s;
  return s.Serialize(registry_->Collect());
}

std::vector<double> Registry::default_buckets() {
  return {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600};
}

}  // namespace flurry::metrics
