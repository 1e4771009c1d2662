#include "branch_outputs.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"

namespace flurry::uploader {
namespace fs = std::filesystem;

namespace {

std::string temp_beside(const fs::path& p) { return p.string() + ".tmp-" + crypto::random_hex(6); }

Result<void> replace_symlink(const fs::path& link, const std::string& target) {
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  if (ec) return fail(Error::transient("cannot create " + link.parent_path().string() + ": " + ec.message()));
  const auto tmp = temp_beside(link);
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, link, ec);
  if (ec) {
    fs::remove(tmp);
    return fail(Error::transient("cannot link " + link.string() + ": " + ec.message()));
  }
  return {};
}

Result<void> replace_file(const fs::path& file, const std::string& content) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return fail(Error::transient("cannot create " + file.parent_path().string() + ": " + ec.message()));
  const auto tmp = temp_beside(file);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.flush()) return fail(Error::transient("cannot write " + tmp));
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp);
    return fail(Error::transient("cannot write " + file.string() + ": " + ec.message()));
  }
  return {};
}

// A file name for any string, distinct for distinct strings (unlike
// text::safe_file_name): bytes outside [A-Za-z0-9._-] and a leading '.'
// become %XX, as in URLs.
std::string encoded_name(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (std::isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out.empty() ? "%" : out;
}

}  // namespace

std::string branch_output_path(const std::string& dir, const state::EvalRecord& eval, const std::string& attr,
                               const std::string& output) {
  // Owners may hold slashes (GitLab groups): each part on its own.
  fs::path p = dir;
  p /= encoded_name(eval.repo.forge);
  for (const auto& part : text::split(eval.repo.owner, '/')) p /= encoded_name(part);
  p /= encoded_name(eval.repo.name);
  p /= encoded_name(eval.branch);
  p /= encoded_name(output == "out" ? attr : attr + "-" + output);
  return p.string();
}

Result<BranchOutputsResult> keep_branch_outputs(const msg::JobFinished& job, const state::EvalRecord& eval,
                                                const BranchOutputsConfig& cfg) {
  BranchOutputsResult r;
  if (eval.branch.empty()) {
    r.why = "not a branch push";
    return r;
  }
  const auto policy = repo::branch_policy(cfg.rules, eval.branch, eval.repo.default_branch);
  const bool roots = policy.register_gcroots && !cfg.gcroots_dir.empty();
  const bool files = policy.update_outputs && !cfg.outputs_dir.empty();
  if (!roots && !files) {
    r.why = policy.why;
    return r;
  }
  for (const auto& [output, path] : job.outputs) {
    if (!text::starts_with(path, "/nix/store/") || path.find("..") != std::string::npos) continue;
    if (roots) {
      if (auto w = replace_symlink(branch_output_path(cfg.gcroots_dir, eval, job.attr, output), path); !w) return fail(w.error());
      ++r.gcroots;
    }
    if (files) {
      if (auto w = replace_file(branch_output_path(cfg.outputs_dir, eval, job.attr, output), path + "\n"); !w) return fail(w.error());
      ++r.outputs;
    }
  }
  return r;
}

}  // namespace flurry::uploader
