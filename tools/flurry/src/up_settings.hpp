#pragma once
// What `flurry up` is told and what it keeps: its flags, the settings it
// keeps between starts in the state directory (forge flags, --set values),
// and the stack options they make. The command line itself is main.cpp's.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/stack/stack.hpp"

namespace flurry::up {

// A forge's flags as given on this command line; empty when not given.
struct ForgeFlags {
  std::string api_url, token_file;
  std::string app_id, app_key_file;  // GitHub only
  bool checks = false;               // GitHub only
};

// Everything `flurry up` was told on its command line.
struct UpFlags {
  std::string state_dir = ".state";
  std::string bin_dir;
  std::string example = std::string(FLURRY_SOURCE_DIR) + "/examples/hello";
  int port = 8080;
  int web_port = 8081;
  bool no_example = false, exit_when_done = false;
  int timeout_s = 600;
  std::map<std::string, ForgeFlags> forges;  // "github", "gitea", "gitlab"
  std::vector<std::string> set, unset;
};

// The forges `up` takes flags for, with an example API URL each.
const std::vector<std::pair<std::string, std::string>>& forges_with_example_urls();


// Settings `flurry up` keeps between starts in settings_path(state_dir),
// one `name = value` a line (`#` starts a comment line). A name is either
// `section.key` (from `--set`; the value is a TOML value as written in the
// config) or a forge flag without its dashes (`github-app-id = 4242`,
// `github-app-key-file = /path/app.pem`): file paths, never secrets.
using KeptSettings = std::map<std::string, std::string>;
std::string settings_path(const std::string& state_dir);
// The kept settings, their values as written (check them with
// parse_assignment); none when the file does not exist. Errors name the
// file and the line.
Result<KeptSettings> load_settings(const std::string& path);
Result<void> save_settings(const std::string& path, const KeptSettings& settings);
// Checks a `section.key=value` assignment as `--set` takes it: bare TOML
// keys joined by dots (a section and a key at least), and one TOML value on
// one line. Returns {"section.key", value}; errors name the key.
Result<std::pair<std::string, std::string>> parse_assignment(const std::string& assignment);


// The absolute, normal form of `path`.
std::string absolute_path(const std::string& path);
// The settings this start applies: the kept ones less --unset, then this
// command's forge flags and --set. `notes` gets what the user should hear
// (an --unset that dropped nothing). Errors name the flag or key.
Result<KeptSettings> updated_settings(const UpFlags& f, KeptSettings kept, std::vector<std::string>& notes);
// The stack this start runs, from `settings`: forge accounts (their token
// or key read from the files named), extra config, and every service's
// links at the web service unless web.public_url is set. Errors name the
// flag or key to fix.
Result<stack::StackOptions> stack_options(const UpFlags& f, const KeptSettings& settings);

}  // namespace flurry::up
