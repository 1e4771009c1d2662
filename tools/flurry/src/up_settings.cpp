#include "up_settings.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "flurry/core/config.hpp"
#include "flurry/core/text.hpp"

namespace fs = std::filesystem;

namespace flurry::up {
namespace {

bool is_bare_key(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& forges_with_example_urls() {
  static const std::vector<std::pair<std::string, std::string>> kForges = {
      {"github", "https://api.github.com"}, {"gitea", "https://gitea.example.org"}, {"gitlab", "https://gitlab.com"}};
  return kForges;
}

std::string settings_path(const std::string& state_dir) { return state_dir + "/settings"; }

Result<std::pair<std::string, std::string>> parse_assignment(const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string key = text::trim(assignment.substr(0, eq));
  const auto parts = text::split(key, '.');
  if (eq == std::string::npos || parts.size() < 2 || !std::all_of(parts.begin(), parts.end(), is_bare_key)) {
    return fail(Error::rejected("expected section.key=value (e.g. builder.slots=4), got '" + assignment + "'"));
  }
  const std::string value = text::trim(assignment.substr(eq + 1));
  if (value.empty() || value.find_first_of("\r\n") != std::string::npos) {
    return fail(Error::rejected(key + ": the value must be one TOML value on one line, e.g. 4, true, \"text\" or [\"a\"]"));
  }
  const auto dot = key.rfind('.');
  try {
    (void)Config::from_string("[" + key.substr(0, dot) + "]\n" + key.substr(dot + 1) + " = " + value + "\n");
  } catch (const ConfigError&) {
    return fail(Error::rejected(key + ": " + value + " is not a TOML value (strings and their lists need quotes: " + key +
                                "='\"text\"', " + key + "='[\"a\", \"b\"]')"));
  }
  return std::pair{key, value};
}

Result<KeptSettings> load_settings(const std::string& path) {
  KeptSettings settings;
  auto content = read_file(path);
  if (!content) {
    if (fs::exists(path)) return fail(Error::transient("cannot read " + path));
    return settings;
  }
  int line_number = 0;
  for (const auto& raw : text::split(*content, '\n')) {
    ++line_number;
    const std::string line = text::trim(raw);
    if (line.empty() || line[0] == '#') continue;
    const auto where = path + ":" + std::to_string(line_number) + ": ";
    const auto eq = line.find('=');
    const std::string name = text::trim(line.substr(0, eq));
    if (eq == std::string::npos || name.empty()) return fail(Error::rejected(where + "expected name = value"));
    settings[name] = text::trim(line.substr(eq + 1));
  }
  return settings;
}

Result<void> save_settings(const std::string& path, const KeptSettings& settings) {
  std::string content =
      "# Kept by `flurry up` and applied on every start: `section.key = value` from\n"
      "# --set, forge flags without their dashes. `flurry up --unset NAME` drops one.\n";
  for (const auto& [name, value] : settings) content += name + " = " + value + "\n";
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  // Written whole, then renamed: an interrupted write leaves the old file.
  const auto temporary = path + ".new";
  std::ofstream out(temporary, std::ios::trunc);
  out << content;
  out.close();
  if (!out) return fail(Error::transient("cannot write " + temporary));
  fs::rename(temporary, path, ec);
  if (ec) return fail(Error::transient("cannot write " + path + ": " + ec.message()));
  return {};
}

std::string absolute_path(const std::string& path) { return fs::absolute(path).lexically_normal().string(); }

namespace {

// This command's flags of `forge` over the kept ones. A token replaces a
// kept App and an App a kept token, so the two never mix.
Result<void> update_forge_settings(const std::string& forge, const ForgeFlags& given, KeptSettings& s) {
  const std::string p = forge + "-";
  for (const auto* value : {&given.api_url, &given.token_file, &given.app_id, &given.app_key_file}) {
    // Kept one a line.
    if (value->find_first_of("\r\n") != std::string::npos) return fail(Error::rejected("--" + p + "* values must be one line"));
  }
  if (!given.token_file.empty() && !given.app_id.empty()) {
    return fail(Error::rejected("give --" + p + "token-file or --" + p + "app-id, not both"));
  }
  if (!given.api_url.empty()) s[p + "api-url"] = given.api_url;
  if (!given.token_file.empty()) {
    s[p + "token-file"] = absolute_path(given.token_file);
    for (const char* app : {"app-id", "app-key-file", "checks"}) s.erase(p + app);
  }
  if (!given.app_id.empty()) {
    s[p + "app-id"] = given.app_id;
    s.erase(p + "token-file");
  }
  if (!given.app_key_file.empty()) s[p + "app-key-file"] = absolute_path(given.app_key_file);
  if (given.checks) s[p + "checks"] = "true";
  return {};
}

}  // namespace

// The settings this start applies: the kept ones less --unset, then this
// command's forge flags and --set.
Result<KeptSettings> updated_settings(const UpFlags& f, KeptSettings s, std::vector<std::string>& notes) {
  for (const auto& name : f.unset) {
    // A forge's name drops all its flags.
    const std::string flags_of = f.forges.count(name) ? name + "-" : std::string();
    auto dropped = s.erase(name);
    for (auto it = s.begin(); it != s.end();) {
      if (flags_of.empty() || !text::starts_with(it->first, flags_of)) {
        ++it;
        continue;
      }
      it = s.erase(it);
      ++dropped;
    }
    if (dropped == 0) notes.push_back("--unset " + name + ": nothing was kept under that name");
  }
  for (const auto& [forge, given] : f.forges) {
    if (auto r = update_forge_settings(forge, given, s); !r) return fail(r.error());
  }
  for (const auto& assignment : f.set) {
    auto kv = parse_assignment(assignment);
    if (!kv) return fail(Error::rejected("--set " + kv.error().message));
    s[kv->first] = kv->second;
  }
  return s;
}

namespace {

// A secret read from the file a flag names, trailing newlines trimmed.
Result<std::string> read_flag_file(const std::string& flag, const std::string& path) {
  auto content = read_file(path);
  while (content && !content->empty() && (content->back() == '\n' || content->back() == '\r')) content->pop_back();
  if (!content || content->empty()) return fail(Error::rejected("--" + flag + " " + path + " is not a readable, non-empty file"));
  return *content;
}

// The account `forge`'s kept flags describe; an empty api_url when the
// forge is not used. Errors name the flags to fix.
Result<stack::StackOptions::ForgeAccount> forge_account(const std::string& forge, const KeptSettings& s) {
  const std::string p = forge + "-";
  auto kept = [&](const std::string& flag) { return s.count(p + flag) ? s.at(p + flag) : std::string(); };
  stack::StackOptions::ForgeAccount account{.api_url = kept("api-url"), .app_id = kept("app-id"), .checks = kept("checks") == "true"};
  for (const char* flag : {"token-file", "app-id", "app-key-file", "checks"}) {
    if (account.api_url.empty() && !kept(flag).empty()) return fail(Error::rejected("--" + p + flag + " needs --" + p + "api-url"));
  }
  if (account.api_url.empty()) return account;
  if (account.checks && account.app_id.empty()) {
    return fail(Error::rejected("--" + p + "checks: GitHub lets only Apps post check runs; give --" + p + "app-id and --" + p +
                                "app-key-file too"));
  }
  if (account.app_id.empty()) {
    if (!kept("app-key-file").empty()) return fail(Error::rejected("--" + p + "app-key-file needs --" + p + "app-id"));
    auto token = read_flag_file(p + "token-file", kept("token-file"));
    if (!token) {
      return fail(Error::rejected("--" + p + "api-url needs a readable --" + p + "token-file" +
                                  (forge == "github" ? ", or --github-app-id with --github-app-key-file" : "") +
                                  (kept("token-file").empty() ? "" : ": " + token.error().message)));
    }
    account.token = *token;
    return account;
  }
  if (account.app_id.find_first_not_of("0123456789") != std::string::npos) {
    return fail(Error::rejected("--" + p + "app-id must be the App's number, got '" + account.app_id + "'"));
  }
  if (kept("app-key-file").empty()) {
    return fail(Error::rejected("--" + p + "app-id needs --" + p + "app-key-file (the App's PEM private key)"));
  }
  auto key = read_flag_file(p + "app-key-file", kept("app-key-file"));
  if (!key) return fail(key.error());
  if (key->find("-----BEGIN") == std::string::npos || key->find("PRIVATE KEY-----") == std::string::npos) {
    return fail(Error::rejected("--" + p + "app-key-file " + kept("app-key-file") + " is not a PEM private key"));
  }
  account.private_key_pem = *key + "\n";
  return account;
}

// A forge flag as kept: "github-app-id".
bool is_forge_flag(const std::string& name) {
  for (const auto& [forge, example_url] : forges_with_example_urls()) {
    for (const char* flag : {"api-url", "token-file", "app-id", "app-key-file", "checks"}) {
      if (name == forge + "-" + flag) return true;
    }
  }
  return false;
}

}  // namespace

// The stack this start runs. Every service's links point at the web
// service unless web.public_url is set.
Result<stack::StackOptions> stack_options(const UpFlags& f, const KeptSettings& settings) {
  stack::StackOptions opts;
  opts.state_dir = f.state_dir;
  opts.bin_dir = f.bin_dir;
  opts.ingest_port = f.port;
  opts.web_port = f.web_port != 0 ? f.web_port : free_tcp_port();
  opts.public_url = "http://127.0.0.1:" + std::to_string(opts.web_port);
  for (const auto& [forge, example_url] : forges_with_example_urls()) {
    auto account = forge_account(forge, settings);
    if (!account) return fail(account.error());
    if (!account->api_url.empty()) opts.forges[forge] = *account;
  }
  for (const auto& [name, value] : settings) {
    if (name.find('.') == std::string::npos) {
      if (!is_forge_flag(name)) return fail(Error::rejected("unknown setting " + name + " (not section.key, nor a forge flag)"));
      continue;
    }
    // --set values were checked; these may be hand-edited.
    if (auto checked = parse_assignment(name + "=" + value); !checked) {
      return fail(Error::rejected("kept setting " + checked.error().message));
    }
    opts.extra_config.push_back(name + "=" + value);
    if (name != "web.public_url") continue;
    try {
      opts.public_url = Config::from_string("public_url = " + value).get_string("public_url", "");
    } catch (const ConfigError&) {
      return fail(Error::rejected("web.public_url must be a string, e.g. web.public_url='\"https://ci.example.org\"'"));
    }
  }
  opts.effect_secrets["github:local/*"] = R"({"example": {"data": {"greeting": "hello from the secrets file"}}})";
  const char* nix_config = std::getenv("NIX_CONFIG");
  if (!nix_config || !*nix_config) {
    // Offline-friendly defaults: flakes on, no substituters to wait for.
    opts.env["NIX_CONFIG"] =
        "experimental-features = nix-command flakes\nsandbox = false\nsubstituters =\nflake-registry = /dev/null\n";
  }
  return opts;
}

}  // namespace flurry::up
