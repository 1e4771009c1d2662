#pragma once
// JetStream adapter for the Bus port (libnats). Keep <nats/nats.h> out of
// this header.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "flurry/bus/bus.hpp"

namespace flurry::bus {

struct NatsOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::string name = "flurry";          // connection name shown by the server
  int stream_replicas = 1;              // >1 on a NATS cluster
  std::chrono::milliseconds publish_timeout{5000};
  // Called after a delivery was dead-lettered (its handler gave up, or it
  // ran out of deliveries), with the consumer's durable name: for metrics.
  std::function<void(const std::string& consumer)> on_dead_letter;
};

// Connects (retrying in the background after a later disconnect) and makes
// sure Flurry's streams exist (subjects.hpp), creating or updating them.
// Error if the server cannot be reached now.
Result<std::unique_ptr<Bus>> connect_nats(const NatsOptions& options);

}  // namespace flurry::bus
