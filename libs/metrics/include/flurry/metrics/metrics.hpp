#pragma once
// One metrics registry per process, exported in Prometheus text format.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace flurry::metrics {

using Labels = std::map<std::string, std::string>;

class Registry {
 public:
  Registry();
  // Metric names get the "flurry_" prefix. Families are created on first
  // use; asking again with the same name returns the same family.
  prometheus::Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  prometheus::Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // Buckets in seconds; default suits operations from 1 ms to 1 h.
  prometheus::Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels = {},
                                   const std::vector<double>& buckets = default_buckets());
  std::string serialize() const;  // text exposition format 0.0.4
  static std::vector<double> default_buckets();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::mutex mu_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counters_;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges_;
  std::map<std::string, prometheus::Family<prometheus::Histogram>*> histograms_;
};

}  // namespace flurry::metrics
