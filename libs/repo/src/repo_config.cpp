#include "flurry/repo/repo_config.hpp"

#include <fnmatch.h>

#include <sstream>
#include <toml++/toml.h>

#include "flurry/core/text.hpp"

namespace flurry::repo {
namespace {

bool safe_relative_path(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find(':') != std::string::npos || p.find('\0') != std::string::npos) return false;
  for (const auto& part : text::split(p, '/')) {
    if (part == "..") return false;
  }
  for (unsigned char c : p) {
    if (c < 0x20 || c == '?' || c == '#' || c == '&' || c == '%' || c == ' ') return false;
  }
  return true;
}

bool attribute_component(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '\'')) return false;
  }
  return true;
}

}  // namespace

Result<RepoConfig> parse_repo_config(const std::string& file, const std::string& content) {
  auto bad = [&](const std::string& key, const std::string& why) {
    return fail(Error::rejected(file + ": " + key + " " + why));
  };
  toml::table t;
  try {
    t = toml::parse(content);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << file << ": " << e.description() << " at line " << e.source().begin.line;
    return fail(Error::rejected(os.str()));
  }
  RepoConfig c;
  c.file = file;
  for (const auto& [key, node] : t) {
    std::string k(key.str());
    if (k == "attribute") {
      auto v = node.value<std::string>();
      if (!v) return bad(k, "must be a string");
      c.attribute = text::split(*v, '.');
      for (const auto& part : c.attribute) {
        if (!attribute_component(part)) return bad(k, "must be an attribute path like \"checks\" or \"ci.checks\"");
      }
    } else if (k == "flake_dir") {
      auto v = node.value<std::string>();
      if (!v) return bad(k, "must be a string");
      std::string dir = *v;
      while (dir.size() > 2 && dir.substr(0, 2) == "./") dir = dir.substr(2);
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      if (dir != "." && !safe_relative_path(dir)) return bad(k, "must be a relative path inside the repository");
      c.flake_dir = dir;
    } else if (k == "lock_file") {
      auto v = node.value<std::string>();
      if (!v) return bad(k, "must be a string");
      if (!safe_relative_path(*v)) return bad(k, "must be a relative path inside the repository");
      c.lock_file = *v;
    } else if (k == "effects_on_pull_requests") {
      auto v = node.value<bool>();
      if (!v) return bad(k, "must be true or false");
      c.effects_on_pull_requests = *v;
    } else if (k == "cache_failed_builds") {
      auto v = node.value<bool>();
      if (!v) return bad(k, "must be true or false");
      c.cache_failed_builds = *v;
    } else if (k == "effects_branches") {
      const auto* arr = node.as_array();
      if (!arr) return bad(k, "must be an array of branch globs");
      for (const auto& el : *arr) {
        auto s = el.value<std::string>();
        if (!s) return bad(k, "must be an array of branch globs");
        c.effects_branches.push_back(*s);
      }
    } else {
      c.warnings.push_back(file + ": unknown key " + k + " ignored");
    }
  }
  return c;
}

Result<RepoConfig> load_repo_config(git::Git& git, const std::string& mirror_dir, const std::string& rev,
                                    const std::vector<std::string>& default_attribute) {
  for (const auto& name : repo_config_files()) {
    auto content = git.read_file(mirror_dir, rev, name);
    if (!content) return fail(content.error());
    if (!content->has_value()) continue;
    return parse_repo_config(name, **content);
  }
  RepoConfig defaults;
  defaults.attribute = default_attribute;
  return defaults;
}

bool branch_matches(const std::string& branch, const std::vector<std::string>& globs) {
  for (const auto& g : globs) {
    if (::fnmatch(g.c_str(), branch.c_str(), 0) == 0) return true;
  }
  return false;
}

bool is_pull_request_ref(const std::string& ref) {
  for (const std::string prefix : {"refs/pull/", "refs/merge-requests/"}) {
    if (ref.compare(0, prefix.size(), prefix) != 0) continue;
    auto rest = ref.substr(prefix.size());
    auto slash = rest.find('/');
    auto number = rest.substr(0, slash);
    return !number.empty() && number.find_first_not_of("0123456789") == std::string::npos;
  }
  return false;
}

}  // namespace flurry::repo
