#include "flurry/messages/subjects.hpp"

#include <set>

#include "flurry/core/text.hpp"

namespace flurry::subjects {

std::string token(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool bad = c == '.' || c == '*' || c == '>' || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
               static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f;
    out += bad ? '_' : c;
  }
  return out.empty() ? "_" : out;
}

std::vector<std::string> feature_tokens(const std::vector<std::string>& features) {
  std::set<std::string> set;
  for (const auto& f : features) {
    auto t = token(f);
    for (char& c : t) {
      if (c == '+') c = '_';
    }
    set.insert(std::move(t));
  }
  return {set.begin(), set.end()};
}

std::string build(std::string_view system, const std::vector<std::string>& features) {
  auto tokens = feature_tokens(features);
  auto subject = build(system);
  for (std::size_t i = 0; i < tokens.size(); ++i) subject += (i == 0 ? "." : "+") + tokens[i];
  return subject;
}

std::optional<std::vector<std::string>> build_features(std::string_view subject, std::string_view system) {
  const auto plain = build(system);
  if (subject == plain) return std::vector<std::string>{};
  if (subject.size() <= plain.size() + 1 || subject.substr(0, plain.size()) != plain || subject[plain.size()] != '.') {
    return std::nullopt;
  }
  auto rest = subject.substr(plain.size() + 1);
  if (rest.find('.') != std::string_view::npos) return std::nullopt;
  return text::split(std::string(rest), '+');
}

std::string durable(std::string_view name) {
  std::string out = token(name);
  for (char& c : out) {
    if (c == '/' || c == '\\') c = '_';
  }
  return out;
}

}  // namespace flurry::subjects
