#include "payload.hpp"

namespace flurry::ingest {

using json = nlohmann::json;

namespace {
const json kNull;
}

Result<Payload> Payload::parse(const std::string& body) {
  auto root = std::make_shared<json>(json::parse(body, nullptr, /*allow_exceptions=*/false));
  if (root->is_discarded()) return fail(Error::rejected("body is not valid JSON"));
  if (!root->is_object()) return fail(Error::rejected("body is not a JSON object"));
  return Payload(root.get(), "", root, std::make_shared<std::string>());
}

const json* Payload::member(const char* key) const {
  if (!j_->is_object()) return nullptr;
  auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) return nullptr;
  return &*it;
}

void Payload::wrong(const char* key, const char* what) const {
  if (error_->empty()) *error_ = "missing or mistyped field " + path_ + key + " (" + what + ")";
}

bool Payload::has(const char* key) const { return member(key) != nullptr; }

std::string Payload::str(const char* key) const {
  const json* m = member(key);
  if (!m || !m->is_string()) {
    wrong(key, "a string");
    return {};
  }
  return m->get<std::string>();
}

std::int64_t Payload::integer(const char* key) const {
  const json* m = member(key);
  if (!m || !m->is_number_integer()) {
    wrong(key, "an integer");
    return 0;
  }
  return m->get<std::int64_t>();
}

Payload Payload::obj(const char* key) const {
  const json* m = member(key);
  if (!m || !m->is_object()) {
    wrong(key, "an object");
    return Payload(&kNull, path_ + key + ".", root_, error_);
  }
  return Payload(m, path_ + key + ".", root_, error_);
}

std::string Payload::opt_str(const char* key, std::string fallback) const {
  const json* m = member(key);
  if (!m) return fallback;
  if (!m->is_string()) {
    wrong(key, "a string");
    return fallback;
  }
  return m->get<std::string>();
}

bool Payload::opt_bool(const char* key, bool fallback) const {
  const json* m = member(key);
  if (!m) return fallback;
  if (!m->is_boolean()) {
    wrong(key, "a boolean");
    return fallback;
  }
  return m->get<bool>();
}

std::optional<Payload> Payload::opt_obj(const char* key) const {
  const json* m = member(key);
  if (!m) return std::nullopt;
  if (!m->is_object()) {
    wrong(key, "an object");
    return std::nullopt;
  }
  return Payload(m, path_ + key + ".", root_, error_);
}

std::vector<std::string> Payload::names_in(const char* list, const char* key) const {
  std::vector<std::string> out;
  const json* m = member(list);
  if (!m) return out;
  if (!m->is_array()) {
    wrong(list, "an array");
    return out;
  }
  for (const auto& item : *m) {
    if (!item.is_object()) continue;
    auto it = item.find(key);
    if (it != item.end() && it->is_string()) out.push_back(it->get<std::string>());
  }
  return out;
}

std::optional<Payload> Payload::first_in(const char* list) const {
  const json* m = member(list);
  if (!m) return std::nullopt;
  if (!m->is_array()) {
    wrong(list, "an array");
    return std::nullopt;
  }
  if (m->empty() || !m->front().is_object()) return std::nullopt;
  return Payload(&m->front(), path_ + list + "[0].", root_, error_);
}

}  // namespace flurry::ingest
