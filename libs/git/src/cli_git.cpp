#include "flurry/git/cli_git.hpp"

#include <algorithm>
#include <filesystem>

#include "flurry/core/text.hpp"

namespace flurry::git {

std::string url_scheme(const std::string& url) {
  auto sep = url.find("://");
  if (sep != std::string::npos) {
    std::string scheme = text::to_lower(url.substr(0, sep));
    bool ok = !scheme.empty() && std::all_of(scheme.begin(), scheme.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+'; });
    return ok ? scheme : "";
  }
  // "<transport>::<address>" runs a remote helper (ext:: runs commands).
  if (url.find("::") != std::string::npos) return "";
  if (url.find_first_of(" \t\n") != std::string::npos) return "";
  // scp-like: [user@]host:path, with no slash before the colon.
  auto colon = url.find(':');
  if (colon != std::string::npos && colon > 0 && url.find('/') > colon) return "ssh";
  return "";
}

Result<ProcessResult> CliGit::git(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"git", "-c", "protocol.ext.allow=never", "-c", "core.askPass=/bin/false"};
  if (std::find(options_.allowed_schemes.begin(), options_.allowed_schemes.end(), "file") != options_.allowed_schemes.end()) {
    argv.insert(argv.end(), {"-c", "protocol.file.allow=always"});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = runner_.run({.argv = argv,
                        .env = {{"GIT_TERMINAL_PROMPT", "0"}, {"GIT_SSH_COMMAND", "ssh -o BatchMode=yes"}, {"LC_ALL", "C"}},
                        .timeout = options_.timeout});
  if (!r) return fail(Error::transient(r.error().message));
  return r;
}

Result<std::string> CliGit::fetch(const FetchRequest& req) {
  if (!text::is_sha1_hex(req.rev)) return fail(Error::rejected("revision '" + text::truncate_utf8(req.rev, 60) + "' is not a 40-hex commit id"));
  if (req.url.empty() || req.url[0] == '-') return fail(Error::rejected("clone URL is not allowed"));
  auto scheme = url_scheme(req.url);
  if (scheme.empty() || std::find(options_.allowed_schemes.begin(), options_.allowed_schemes.end(), scheme) == options_.allowed_schemes.end()) {
    return fail(Error::rejected("clone URL scheme '" + scheme + "' is not allowed (allowed: " +
                                [&] {
                                  std::string s;
                                  for (const auto& a : options_.allowed_schemes) s += (s.empty() ? "" : ", ") + a;
                                  return s;
                                }() +
                                ")"));
  }
  std::string rev = text::to_lower(req.rev);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(req.mirror_dir).parent_path(), ec);
  if (!std::filesystem::exists(req.mirror_dir + "/HEAD")) {
    auto init = git({"init", "-q", "--bare", req.mirror_dir});
    if (!init) return fail(init.error());
    if (!init->ok()) return fail(Error::transient("git init failed: " + init->err));
  }
  auto present = [&] {
    auto r = git({"-C", req.mirror_dir, "cat-file", "-e", rev + "^{commit}"});
    return r && r->ok();
  };
  if (!present()) {
    // By commit id first (GitHub and git >= 2.x servers allow it); else the ref.
    auto by_rev = git({"-C", req.mirror_dir, "fetch", "-q", "--no-tags", "--end-of-options", req.url, rev});
    if (!by_rev) return fail(by_rev.error());
    if (!present() && !req.ref.empty()) {
      auto check = git({"check-ref-format", req.ref});
      if (check && check->ok()) {
        auto by_ref = git({"-C", req.mirror_dir, "fetch", "-q", "--no-tags", "--end-of-options", req.url,
                           "+" + req.ref + ":refs/flurry/fetched"});
        if (!by_ref) return fail(by_ref.error());
        if (!by_ref->ok() && !present()) return fail(Error::transient("git fetch failed: " + text::trim(by_ref->err)));
      }
    }
    if (!present()) {
      std::string why = by_rev->ok() ? "" : ": " + text::trim(by_rev->err);
      return fail(Error::transient("commit " + rev + " is not in " + req.url + why));
    }
  }
  auto keep = git({"-C", req.mirror_dir, "update-ref", "refs/flurry/" + rev, rev});
  if (!keep) return fail(keep.error());
  if (!keep->ok()) return fail(Error::transient("git update-ref failed: " + keep->err));
  auto abs = std::filesystem::absolute(req.mirror_dir).lexically_normal().string();
  return "git+file://" + abs + "?ref=refs/flurry/" + rev + "&rev=" + rev;
}

}  // namespace flurry::git
