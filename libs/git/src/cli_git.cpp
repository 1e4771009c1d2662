#include "flurry/git/cli_git.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "flurry/core/text.hpp"

namespace flurry::git {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// The local tracking ref for a fetched ref: refs/heads/x -> refs/flurry/heads/x.
// Empty when the ref cannot be stored without clashing with the pins
// (refs/flurry/<40 hex>).
std::string tracking_ref(const std::string& ref) {
  std::string rest = ref.substr(5);  // after "refs/"
  auto slash = rest.find('/');
  if (text::is_sha1_hex(rest.substr(0, slash))) return "";
  return "refs/flurry/" + rest;
}

// git's text for a message: credentials in the URL hidden, trimmed.
std::string git_text(const std::string& err, const std::string& url) { return text::hide_url(text::trim(err), url); }

}  // namespace

std::string url_scheme(const std::string& url) {
  auto sep = url.find("://");
  if (sep != std::string::npos) {
    std::string scheme = text::to_lower(url.substr(0, sep));
    bool ok = !scheme.empty() && std::all_of(scheme.begin(), scheme.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
    });
    // "<transport>::<address>" runs a remote helper (ext:: runs commands).
    return ok && scheme.find("::") == std::string::npos ? scheme : "";
  }
  if (url.find("::") != std::string::npos) return "";
  // scp-like: [user@]host:path, with no slash before the colon.
  auto colon = url.find(':');
  if (colon != std::string::npos && colon > 0 && url.find('/') > colon) return "ssh";
  return "";
}

std::string display_url(const std::string& url) { return text::display_url(url); }

std::map<std::string, std::string> auth_env(const std::string& url, const std::string& header) {
  const auto scheme = url_scheme(url);
  if (header.empty() || (scheme != "https" && scheme != "http")) return {};
  auto rest = url.substr(scheme.size() + 3);
  auto host = rest.substr(0, rest.find('/'));
  if (auto at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);  // credentials in the URL
  if (host.empty()) return {};
  return {{"GIT_CONFIG_COUNT", "1"},
          {"GIT_CONFIG_KEY_0", "http." + scheme + "://" + host + "/.extraHeader"},
          {"GIT_CONFIG_VALUE_0", header}};
}

Result<void> CliGit::check_url(const std::string& url) const { return check_clone_url(url, options_.allowed_schemes); }

Result<void> check_clone_url(const std::string& url, const std::vector<std::string>& allowed_schemes) {
  if (url.empty() || url[0] == '-') return fail(Error::rejected("clone URL '" + text::truncate_utf8(display_url(url), 200) + "' is not allowed"));
  if (std::any_of(url.begin(), url.end(), [](char c) { return std::iscntrl(static_cast<unsigned char>(c)) || c == ' '; })) {
    return fail(Error::rejected("clone URL contains whitespace or control characters"));
  }
  auto scheme = url_scheme(url);
  if (scheme.empty() || !contains(allowed_schemes, scheme)) {
    return fail(Error::rejected("clone URL scheme '" + (scheme.empty() ? std::string("(none)") : scheme) +
                                "' is not allowed (allowed: " + join(allowed_schemes, ", ") + ")"));
  }
  return {};
}

Result<ProcessResult> CliGit::git(const std::vector<std::string>& args, const std::map<std::string, std::string>& extra_env) {
  // protocol.ext.allow=never and GIT_ALLOW_PROTOCOL keep git from running
  // commands or using transports nobody allowed, even through redirects or
  // submodules; no prompt can ever block the evaluator.
  std::vector<std::string> argv = {"git", "-c", "protocol.ext.allow=never", "-c", "core.askPass=/bin/false"};
  if (contains(options_.allowed_schemes, "file")) argv.insert(argv.end(), {"-c", "protocol.file.allow=always"});
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> protocols;
  for (const auto& s : options_.allowed_schemes) {
    if (s != "ext") protocols.push_back(s);
  }
  std::map<std::string, std::string> env = {{"GIT_TERMINAL_PROMPT", "0"},
                                             {"GIT_ALLOW_PROTOCOL", join(protocols, ":")},
                                             {"GIT_SSH_COMMAND", "ssh -o BatchMode=yes"},
                                             {"LC_ALL", "C"}};
  env.insert(extra_env.begin(), extra_env.end());
  auto r = runner_.run({.argv = argv, .env = env, .timeout = options_.timeout, .cancel = options_.cancel});
  if (!r) return fail(Error::transient("cannot run git: " + r.error().message));
  return r;
}

std::mutex& CliGit::mirror_lock(const std::string& mirror) {
  std::lock_guard lock(locks_mu_);
  auto& m = locks_[mirror];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

Result<std::string> CliGit::fetch(const FetchRequest& req) {
  if (!text::is_sha1_hex(req.rev)) return fail(Error::rejected("revision '" + text::truncate_utf8(req.rev, 60) + "' is not a 40-hex commit id"));
  if (auto ok = check_url(req.url); !ok) return fail(ok.error());
  if (req.mirror_dir.empty()) return fail(Error::rejected("no mirror directory"));
  const std::string rev = text::to_lower(req.rev);
  std::error_code ec;
  const std::string mirror = std::filesystem::absolute(req.mirror_dir, ec).lexically_normal().string();
  if (ec) return fail(Error::transient("cannot resolve " + req.mirror_dir + ": " + ec.message()));
  std::lock_guard serial(mirror_lock(mirror));  // one fetch per mirror at a time in this process

  std::filesystem::create_directories(std::filesystem::path(mirror).parent_path(), ec);
  if (!std::filesystem::exists(mirror + "/HEAD")) {
    auto init = git({"init", "-q", "--bare", "--", mirror});
    if (!init) return fail(init.error());
    if (!init->ok()) return fail(Error::transient("git init " + mirror + " failed: " + text::trim(init->err)));
  }
  auto present = [&] {
    auto r = git({"-C", mirror, "cat-file", "-e", rev + "^{commit}"});
    return r && r->ok();
  };

  if (!present()) {
    const auto auth = auth_env(req.url, req.auth_header);
    std::string errors;
    bool ref_fetched = false;
    // The ref first (what a normal clone would see), into its own namespace.
    if (text::starts_with(req.ref, "refs/")) {
      auto valid = git({"check-ref-format", req.ref});
      if (!valid) return fail(valid.error());
      auto local = tracking_ref(req.ref);
      if (valid->ok() && !local.empty()) {
        auto by_ref = git({"-C", mirror, "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--end-of-options", req.url,
                           "+" + req.ref + ":" + local},
                          auth);
        if (!by_ref) return fail(by_ref.error());
        ref_fetched = by_ref->ok();
        if (!by_ref->ok()) errors = git_text(by_ref->err, req.url);
      }
    }
    // Then the commit itself (the ref may have moved on, or was not given).
    if (!present()) {
      auto by_rev = git({"-C", mirror, "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--end-of-options", req.url, rev}, auth);
      if (!by_rev) return fail(by_rev.error());
      if (!by_rev->ok()) errors += (errors.empty() ? "" : "\n") + git_text(by_rev->err, req.url);
      if (!present()) {
        std::string msg = "commit " + rev + " is not in " + display_url(req.url) + (errors.empty() ? "" : ": " + errors);
        // The remote answered for the ref but does not have the commit: a
        // retry will not help.
        if (ref_fetched) return fail(Error::rejected(msg));
        return fail(Error::transient(msg));
      }
    }
  }
  auto keep = git({"-C", mirror, "update-ref", "refs/flurry/" + rev, rev});
  if (!keep) return fail(keep.error());
  if (!keep->ok()) return fail(Error::transient("git update-ref failed: " + text::trim(keep->err)));
  return "git+file://" + mirror + "?ref=refs/flurry/" + rev + "&rev=" + rev;
}

Result<std::string> CliGit::fetch_branch_head(const std::string& url, const std::string& branch, const std::string& mirror_dir,
                                              const std::string& auth_header) {
  if (auto ok = check_url(url); !ok) return fail(ok.error());
  const std::string ref = "refs/heads/" + branch;
  auto valid = git({"check-ref-format", ref});
  if (!valid) return fail(valid.error());
  auto local = tracking_ref(ref);
  if (!valid->ok() || local.empty()) return fail(Error::rejected("'" + text::truncate_utf8(branch, 80) + "' is not a branch name"));
  std::error_code ec;
  const std::string mirror = std::filesystem::absolute(mirror_dir, ec).lexically_normal().string();
  if (ec) return fail(Error::transient("cannot resolve " + mirror_dir + ": " + ec.message()));
  std::lock_guard serial(mirror_lock(mirror));
  std::filesystem::create_directories(std::filesystem::path(mirror).parent_path(), ec);
  if (!std::filesystem::exists(mirror + "/HEAD")) {
    auto init = git({"init", "-q", "--bare", "--", mirror});
    if (!init) return fail(init.error());
    if (!init->ok()) return fail(Error::transient("git init " + mirror + " failed: " + text::trim(init->err)));
  }
  auto fetched = git({"-C", mirror, "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--end-of-options", url, "+" + ref + ":" + local},
                     auth_env(url, auth_header));
  if (!fetched) return fail(fetched.error());
  if (!fetched->ok()) return fail(Error::transient("cannot fetch " + ref + ": " + git_text(fetched->err, url)));
  auto head = git({"-C", mirror, "rev-parse", "--verify", "--end-of-options", local + "^{commit}"});
  if (!head) return fail(head.error());
  if (!head->ok()) return fail(Error::transient("cannot resolve " + ref + ": " + text::trim(head->err)));
  return text::trim(head->out);
}

Result<Merge> CliGit::merge(const std::string& mirror_dir, const std::string& base_rev, const std::string& head_rev) {
  if (!text::is_sha1_hex(base_rev) || !text::is_sha1_hex(head_rev)) return fail(Error::rejected("merge needs two 40-hex commit ids"));
  const std::string base = text::to_lower(base_rev), head = text::to_lower(head_rev);
  std::error_code ec;
  const std::string mirror = std::filesystem::absolute(mirror_dir, ec).lexically_normal().string();
  if (ec) return fail(Error::transient("cannot resolve " + mirror_dir + ": " + ec.message()));
  std::lock_guard serial(mirror_lock(mirror));
  // git >= 2.38: the merged tree without a work tree; exit 1 on conflicts,
  // listing them after the tree id.
  auto tree = git({"-C", mirror, "merge-tree", "--write-tree", "--name-only", "--no-messages", base, head});
  if (!tree) return fail(tree.error());
  auto lines = text::split(text::trim(tree->out), '\n');
  if (tree->exit_code == 1) {
    std::string files;
    for (std::size_t i = 1; i < lines.size() && i <= 10; ++i) files += (i > 1 ? ", " : "") + lines[i];
    if (lines.size() > 11) files += ", ...";
    return fail(Error::rejected("merging " + head.substr(0, 12) + " into " + base.substr(0, 12) + " conflicts" +
                                (files.empty() ? "" : " in " + files)));
  }
  if (!tree->ok() || lines.empty() || lines[0].size() != 40) {
    return fail(Error::transient("git merge-tree failed: " + text::trim(tree->err)));
  }
  const std::map<std::string, std::string> identity = {
      {"GIT_AUTHOR_NAME", "Flurry"},           {"GIT_AUTHOR_EMAIL", "flurry@localhost"},
      {"GIT_AUTHOR_DATE", "@0 +0000"},         {"GIT_COMMITTER_NAME", "Flurry"},
      {"GIT_COMMITTER_EMAIL", "flurry@localhost"}, {"GIT_COMMITTER_DATE", "@0 +0000"}};
  auto commit = git({"-C", mirror, "commit-tree", lines[0], "-p", base, "-p", head, "-m", "Merge " + head + " into " + base}, identity);
  if (!commit) return fail(commit.error());
  const std::string rev = text::trim(commit->out);
  if (!commit->ok() || !text::is_sha1_hex(rev)) return fail(Error::transient("git commit-tree failed: " + text::trim(commit->err)));
  auto keep = git({"-C", mirror, "update-ref", "refs/flurry/" + rev, rev});
  if (!keep) return fail(keep.error());
  if (!keep->ok()) return fail(Error::transient("git update-ref failed: " + text::trim(keep->err)));
  return Merge{rev, "git+file://" + mirror + "?ref=refs/flurry/" + rev + "&rev=" + rev};
}

Result<std::optional<std::string>> CliGit::read_file(const std::string& mirror_dir, const std::string& rev,
                                                   const std::string& path, std::size_t max_bytes) {
  if (!text::is_sha1_hex(rev)) return fail(Error::rejected("revision is not a 40-hex commit id"));
  if (path.empty() || path[0] == '/' || path.find("..") != std::string::npos) return fail(Error::rejected("bad path " + path));
  std::string object = text::to_lower(rev) + ":" + path;
  auto size = git({"-C", mirror_dir, "cat-file", "-s", object});
  if (!size) return fail(size.error());
  if (!size->ok()) {
    // A missing path and a missing commit look alike; tell them apart.
    auto commit = git({"-C", mirror_dir, "cat-file", "-e", text::to_lower(rev) + "^{commit}"});
    if (commit && commit->ok()) return std::optional<std::string>();
    return fail(Error::transient("commit " + rev + " is not in the mirror"));
  }
  std::size_t bytes = 0;
  try {
    bytes = static_cast<std::size_t>(std::stoull(text::trim(size->out)));
  } catch (...) {
    return fail(Error::transient("git cat-file -s printed no size"));
  }
  if (bytes > max_bytes) return fail(Error::rejected(path + " is larger than " + std::to_string(max_bytes) + " bytes"));
  auto blob = git({"-C", mirror_dir, "cat-file", "blob", object});
  if (!blob) return fail(blob.error());
  if (!blob->ok()) return fail(Error::rejected(path + " is not a file"));
  return std::optional<std::string>(blob->out);
}

Result<std::map<std::string, std::string>> CliGit::remote_heads(const std::string& url) {
  if (auto ok = check_url(url); !ok) return fail(ok.error());
  auto listed = git({"ls-remote", "--heads", "--end-of-options", url});
  if (!listed) return fail(listed.error());
  if (!listed->ok()) {
    auto why = git_text(listed->err, url);
    if (why.empty() || listed->timed_out || listed->cancelled) why = listed->describe();
    return fail(Error::transient("cannot list the branches of " + display_url(url) + ": " + text::truncate_utf8(why, 2000)));
  }
  // "<commit id>\trefs/heads/<branch>" per line; ref names cannot hold tabs
  // or newlines, so anything else is not a branch line.
  std::map<std::string, std::string> heads;
  for (const auto& line : text::split(listed->out, '\n')) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const std::string ref = line.substr(tab + 1);
    if (!text::starts_with(ref, "refs/heads/") || ref.size() == 11) continue;
    heads[ref.substr(11)] = line.substr(0, tab);
  }
  return heads;
}

}  // namespace flurry::git
