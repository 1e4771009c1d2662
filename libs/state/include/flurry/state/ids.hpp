#pragma once
// Deterministic ids, so that a redelivered message recreates the same
// records instead of new ones.
#include <string>

#include "flurry/core/crypto.hpp"

namespace flurry::state {

// An eval per change event.
inline std::string eval_id_for_change(const std::string& change_id) {
  return "e" + crypto::sha256_hex(change_id).substr(0, 20);
}
// A job per (eval, attribute path).
inline std::string job_id_for(const std::string& eval_id, const std::string& attr) {
  return eval_id + "-" + crypto::sha256_hex(attr).substr(0, 16);
}

}  // namespace flurry::state
