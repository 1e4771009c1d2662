// CliGit against real git on local repositories.
#include "flurry/git/cli_git.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <filesystem>
#include <mutex>
#include <thread>

#include "flurry/core/text.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::git;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::string sh(const std::vector<std::string>& argv) {
  PosixProcessRunner r;
  auto res = r.run({.argv = argv,
                    .env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"}, {"GIT_COMMITTER_NAME", "t"}, {"GIT_COMMITTER_EMAIL", "t@t"}}});
  EXPECT_TRUE(res && res->ok()) << (res ? res->err : res.error().message);
  return res ? text::trim(res->out) : "";
}

// Runs real processes and records what was asked.
class RecordingRunner final : public ProcessRunner {
 public:
  Result<ProcessResult> run(const ProcessSpec& spec) override {
    {
      std::lock_guard lock(mu);
      calls.push_back(spec);
    }
    return real.run(spec);
  }
  std::mutex mu;
  std::vector<ProcessSpec> calls;
  PosixProcessRunner real;
};

}  // namespace

class CliGitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src = tmp.file("src");
    sh({"git", "init", "-q", "-b", "main", src});
    rev = commit("flake.nix", "{ outputs = _: {}; }\n");
  }
  std::string commit(const std::string& file, const std::string& content) {
    test::write_file(src + "/" + file, content);
    sh({"git", "-C", src, "add", "."});
    sh({"git", "-C", src, "commit", "-q", "-m", file});
    return sh({"git", "-C", src, "rev-parse", "HEAD"});
  }
  test::TempDir tmp{"flurry-git"};
  RecordingRunner runner;
  std::string src, rev;
};

TEST_F(CliGitTest, FetchesARevisionIntoAMirrorAndReturnsAPinnedFlakeRef) {
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto mirror = tmp.file("repos/github/octo/hello.git");
  auto ref = g.fetch({"file://" + src, "refs/heads/main", rev, mirror});
  ASSERT_TRUE(ref.has_value()) << ref.error().message;
  EXPECT_EQ(*ref, "git+file://" + mirror + "?ref=refs/flurry/" + rev + "&rev=" + rev);
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "refs/flurry/" + rev}), rev);
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "refs/flurry/heads/main"}), rev);
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "--is-bare-repository"}), "true");
  // A second fetch of the same rev reuses the mirror and needs no network.
  auto calls = runner.calls.size();
  EXPECT_TRUE(g.fetch({"file://" + src, "refs/heads/main", rev, mirror}).has_value());
  for (std::size_t i = calls; i < runner.calls.size(); ++i) {
    EXPECT_THAT(runner.calls[i].argv, Not(::testing::Contains("fetch")));
  }
}

TEST_F(CliGitTest, EveryGitCallIsPromptFreeExtFreeAndEndsOptionsBeforeTheUrl) {
  CliGit g(runner, {.allowed_schemes = {"https", "file"}});
  ASSERT_TRUE(g.fetch({"file://" + src, "refs/heads/main", rev, tmp.file("m.git")}).has_value());
  ASSERT_FALSE(runner.calls.empty());
  int fetches = 0;
  for (const auto& c : runner.calls) {
    EXPECT_EQ(c.argv[0], "git");
    EXPECT_EQ(c.env.at("GIT_TERMINAL_PROMPT"), "0");
    EXPECT_EQ(c.env.at("GIT_ALLOW_PROTOCOL"), "https:file");
    auto ext = std::find(c.argv.begin(), c.argv.end(), "protocol.ext.allow=never");
    ASSERT_NE(ext, c.argv.end());
    EXPECT_EQ(*(ext - 1), "-c");
    auto url = std::find(c.argv.begin(), c.argv.end(), "file://" + src);
    if (url != c.argv.end()) {
      ++fetches;
      EXPECT_EQ(*(url - 1), "--end-of-options");
    }
  }
  EXPECT_GE(fetches, 1);
}

TEST_F(CliGitTest, HostileBranchNamesDoNotBreakTheFetch) {
  // Valid ref names can carry shell syntax; nothing may ever run it.
  const std::string branch = "feat/$(touch${IFS}pwned);`touch${IFS}pwned2`|x";
  sh({"git", "-C", src, "checkout", "-q", "-b", branch});
  auto rev2 = commit("b.txt", "b\n");
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto mirror = tmp.file("m.git");
  auto ref = g.fetch({"file://" + src, "refs/heads/" + branch, rev2, mirror});
  ASSERT_TRUE(ref.has_value()) << ref.error().message;
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "refs/flurry/" + rev2}), rev2);
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "refs/flurry/heads/" + branch}), rev2);
  for (const auto& dir : {std::filesystem::current_path().string(), tmp.path(), mirror, src}) {
    EXPECT_FALSE(std::filesystem::exists(dir + "/pwned")) << dir;
    EXPECT_FALSE(std::filesystem::exists(dir + "/pwned2")) << dir;
  }
}

TEST_F(CliGitTest, InvalidRefNamesAreNotFetchedButTheCommitStillIs) {
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto ref = g.fetch({"file://" + src, "refs/heads/a..b:refs/heads/evil", rev, tmp.file("m.git")});
  ASSERT_TRUE(ref.has_value()) << ref.error().message;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("m.git/refs/heads/evil")));
}

TEST_F(CliGitTest, ACommitNoLongerAtTheRefIsFetchedDirectly) {
  sh({"git", "-C", src, "checkout", "-q", "-b", "side"});
  auto side = commit("side.txt", "s\n");
  sh({"git", "-C", src, "checkout", "-q", "main"});
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto mirror = tmp.file("m.git");
  auto ref = g.fetch({"file://" + src, "refs/heads/main", side, mirror});
  ASSERT_TRUE(ref.has_value()) << ref.error().message;
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "refs/flurry/" + side}), side);
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "refs/flurry/heads/main"}), rev);
}

TEST_F(CliGitTest, DisallowedSchemesAndOptionLikeUrlsAreRejectedWithoutRunningGit) {
  CliGit g(runner, {.allowed_schemes = {"https"}});
  auto r = g.fetch({"file://" + src, "", rev, tmp.file("m.git")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  EXPECT_THAT(r.error().message, HasSubstr("scheme 'file' is not allowed"));
  for (std::string bad : {"--upload-pack=touch /tmp/x", "-uhttps://x", "ext::sh -c touch% /tmp/pwned", "ext::sh", "/tmp/local",
                          "https://example.invalid/x.git\n--upload-pack=x", "fd::17", ""}) {
    auto res = g.fetch({bad, "", rev, tmp.file("m.git")});
    ASSERT_FALSE(res.has_value()) << bad;
    EXPECT_EQ(res.error().code, ErrorCode::kRejected) << bad;
  }
  auto short_rev = g.fetch({"https://example.invalid/x.git", "", "abc", tmp.file("m.git")});
  ASSERT_FALSE(short_rev.has_value());
  EXPECT_EQ(short_rev.error().code, ErrorCode::kRejected);
  EXPECT_TRUE(runner.calls.empty());
  EXPECT_FALSE(std::filesystem::exists(tmp.file("m.git")));
}

TEST_F(CliGitTest, ACommitTheRemoteDoesNotHaveIsRejected) {
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto r = g.fetch({"file://" + src, "refs/heads/main", std::string(40, 'e'), tmp.file("m.git")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  EXPECT_THAT(r.error().message, HasSubstr("commit eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee is not in file://" + src));
}

TEST_F(CliGitTest, AnUnreachableRemoteIsTransientAndItsCredentialsStayHidden) {
  CliGit g(runner, {.allowed_schemes = {"https", "file"}});
  auto gone = g.fetch({"file://" + tmp.file("nowhere"), "refs/heads/main", rev, tmp.file("m.git")});
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, ErrorCode::kTransient);
  auto creds = g.fetch({"https://bot:s3cr3t-token@127.0.0.1:1/o/r.git", "refs/heads/main", rev, tmp.file("m2.git")});
  ASSERT_FALSE(creds.has_value());
  EXPECT_EQ(creds.error().code, ErrorCode::kTransient);
  EXPECT_THAT(creds.error().message, Not(HasSubstr("s3cr3t-token")));
  EXPECT_THAT(creds.error().message, HasSubstr("https://***@127.0.0.1:1/o/r.git"));
}

TEST(UrlScheme, RecognisesUrlsAndScpSyntax) {
  EXPECT_EQ(url_scheme("https://github.com/o/r.git"), "https");
  EXPECT_EQ(url_scheme("HTTPS://github.com/o/r.git"), "https");
  EXPECT_EQ(url_scheme("git@github.com:o/r.git"), "ssh");
  EXPECT_EQ(url_scheme("ssh://git@github.com/o/r.git"), "ssh");
  EXPECT_EQ(url_scheme("file:///tmp/x"), "file");
  EXPECT_EQ(url_scheme("/tmp/x"), "");
  EXPECT_EQ(url_scheme("ext::sh -c x"), "");
  EXPECT_EQ(url_scheme("ext::https://x"), "");
}

TEST(DisplayUrl, HidesCredentials) {
  EXPECT_EQ(display_url("https://u:p@h/x.git"), "https://***@h/x.git");
  EXPECT_EQ(display_url("https://h/a@b"), "https://h/a@b");
  EXPECT_EQ(display_url("git@github.com:o/r.git"), "git@github.com:o/r.git");
}

TEST_F(CliGitTest, ReadsAFileAtACommitAndTellsAMissingFileFromAMissingCommit) {
  auto rev2 = commit("flurry.toml", "attribute = \"ci\"\n");
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto mirror = tmp.file("m.git");
  ASSERT_TRUE(g.fetch({"file://" + src, "refs/heads/main", rev2, mirror}).has_value());
  auto present = g.read_file(mirror, rev2, "flurry.toml");
  ASSERT_TRUE(present.has_value()) << present.error().message;
  ASSERT_TRUE(present->has_value());
  EXPECT_EQ(**present, "attribute = \"ci\"\n");
  // The first commit has no flurry.toml.
  auto absent = g.read_file(mirror, rev, "flurry.toml");
  ASSERT_TRUE(absent.has_value()) << absent.error().message;
  EXPECT_FALSE(absent->has_value());
  EXPECT_FALSE(g.read_file(mirror, std::string(40, 'e'), "flurry.toml").has_value());
  EXPECT_FALSE(g.read_file(mirror, rev2, "flurry.toml", 4).has_value());  // over the size limit
  EXPECT_FALSE(g.read_file(mirror, rev2, "../x").has_value());
}

TEST_F(CliGitTest, FetchesTheCurrentHeadOfABranch) {
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto mirror = tmp.file("heads.git");
  auto head = g.fetch_branch_head("file://" + src, "main", mirror, "");
  ASSERT_TRUE(head.has_value()) << head.error().message;
  EXPECT_EQ(*head, rev);
  auto rev2 = commit("more.txt", "x\n");
  EXPECT_EQ(*g.fetch_branch_head("file://" + src, "main", mirror, ""), rev2);
  EXPECT_FALSE(g.fetch_branch_head("file://" + src, "no-such-branch", mirror, "").has_value());
  EXPECT_FALSE(g.fetch_branch_head("file://" + src, "bad..name", mirror, "").has_value());
}

TEST_F(CliGitTest, MergesAHeadOntoItsBaseAsAForgesMergeRefWouldAndAlwaysTheSameWay) {
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto mirror = tmp.file("merge.git");
  sh({"git", "-C", src, "checkout", "-q", "-b", "topic"});
  auto head = commit("topic.txt", "topic\n");
  sh({"git", "-C", src, "checkout", "-q", "main"});
  auto base = commit("main.txt", "main\n");
  ASSERT_TRUE(g.fetch({"file://" + src, "refs/heads/topic", head, mirror}).has_value());
  ASSERT_TRUE(g.fetch({"file://" + src, "refs/heads/main", base, mirror}).has_value());
  auto m = g.merge(mirror, base, head);
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_TRUE(text::is_sha1_hex(m->rev));
  EXPECT_EQ(m->flake_ref, "git+file://" + mirror + "?ref=refs/flurry/" + m->rev + "&rev=" + m->rev);
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", m->rev + "^1"}), base);
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", m->rev + "^2"}), head);
  EXPECT_EQ(sh({"git", "-C", mirror, "ls-tree", "--name-only", m->rev}), "flake.nix\nmain.txt\ntopic.txt");
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "refs/flurry/" + m->rev}), m->rev);
  // The same pair again (a redelivery): the very same commit.
  auto again = g.merge(mirror, base, head);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->rev, m->rev);
}

TEST_F(CliGitTest, AMergeConflictIsRejectedNamingTheFile) {
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto mirror = tmp.file("conflict.git");
  sh({"git", "-C", src, "checkout", "-q", "-b", "topic"});
  auto head = commit("flake.nix", "{ outputs = _: { topic = 1; }; }\n");
  sh({"git", "-C", src, "checkout", "-q", "main"});
  auto base = commit("flake.nix", "{ outputs = _: { main = 1; }; }\n");
  ASSERT_TRUE(g.fetch({"file://" + src, "refs/heads/topic", head, mirror}).has_value());
  ASSERT_TRUE(g.fetch({"file://" + src, "refs/heads/main", base, mirror}).has_value());
  auto m = g.merge(mirror, base, head);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code, ErrorCode::kRejected);
  EXPECT_THAT(m.error().message, HasSubstr("conflicts in flake.nix"));
  EXPECT_FALSE(g.merge(mirror, "not-a-sha", head).has_value());
}

TEST_F(CliGitTest, ListsTheRemotesBranchesAndTheirHeads) {
  sh({"git", "-C", src, "checkout", "-q", "-b", "topic"});
  auto topic = commit("topic.txt", "t\n");
  // Valid ref names can carry shell syntax; it comes back as plain text.
  const std::string hostile = "feat/$(touch${IFS}pwned);`touch${IFS}pwned2`|x";
  sh({"git", "-C", src, "checkout", "-q", "-b", hostile});
  auto hostile_rev = commit("h.txt", "h\n");
  sh({"git", "-C", src, "tag", "v1"});  // tags are not branches
  sh({"git", "-C", src, "checkout", "-q", "main"});
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto heads = g.remote_heads("file://" + src);
  ASSERT_TRUE(heads.has_value()) << heads.error().message;
  EXPECT_EQ(*heads, (std::map<std::string, std::string>{{"main", rev}, {"topic", topic}, {hostile, hostile_rev}}));
  for (const auto& dir : {std::filesystem::current_path().string(), tmp.path(), src}) {
    EXPECT_FALSE(std::filesystem::exists(dir + "/pwned")) << dir;
    EXPECT_FALSE(std::filesystem::exists(dir + "/pwned2")) << dir;
  }
  // Options end before the URL; no prompt, no ext.
  ASSERT_EQ(runner.calls.size(), 1u);
  const auto& argv = runner.calls[0].argv;
  auto url = std::find(argv.begin(), argv.end(), "file://" + src);
  ASSERT_NE(url, argv.end());
  EXPECT_EQ(*(url - 1), "--end-of-options");
  EXPECT_THAT(argv, ::testing::Contains("ls-remote"));
  EXPECT_THAT(argv, ::testing::Contains("protocol.ext.allow=never"));
  EXPECT_EQ(runner.calls[0].env.at("GIT_TERMINAL_PROMPT"), "0");

  // A branch that went away is no longer listed.
  sh({"git", "-C", src, "branch", "-q", "-D", "topic"});
  auto after = g.remote_heads("file://" + src);
  ASSERT_TRUE(after.has_value()) << after.error().message;
  EXPECT_EQ(after->count("topic"), 0u);
  EXPECT_EQ(after->size(), 2u);
}

TEST_F(CliGitTest, AnEmptyRemoteHasNoBranches) {
  auto empty = tmp.file("empty.git");
  sh({"git", "init", "-q", "--bare", empty});
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto heads = g.remote_heads("file://" + empty);
  ASSERT_TRUE(heads.has_value()) << heads.error().message;
  EXPECT_TRUE(heads->empty());
}

TEST_F(CliGitTest, ListingHeadsRefusesDisallowedUrlsWithoutRunningGit) {
  CliGit g(runner, {.allowed_schemes = {"https"}});
  auto r = g.remote_heads("file://" + src);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  EXPECT_THAT(r.error().message, HasSubstr("scheme 'file' is not allowed"));
  for (std::string bad : {"--upload-pack=touch /tmp/x", "ext::sh -c touch% /tmp/pwned", "/tmp/local", "", "https://h/x y"}) {
    auto res = g.remote_heads(bad);
    ASSERT_FALSE(res.has_value()) << bad;
    EXPECT_EQ(res.error().code, ErrorCode::kRejected) << bad;
  }
  EXPECT_TRUE(runner.calls.empty());
  EXPECT_TRUE(check_clone_url("https://h/x.git", {"https"}).has_value());
  EXPECT_FALSE(check_clone_url("ssh://h/x.git", {"https"}).has_value());
}

TEST_F(CliGitTest, ListingHeadsOfAnUnreachableRemoteIsTransientAndHidesCredentials) {
  CliGit g(runner, {.allowed_schemes = {"https", "file"}});
  auto gone = g.remote_heads("file://" + tmp.file("nowhere"));
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, ErrorCode::kTransient);
  auto creds = g.remote_heads("https://bot:s3cr3t-token@127.0.0.1:1/o/r.git");
  ASSERT_FALSE(creds.has_value());
  EXPECT_EQ(creds.error().code, ErrorCode::kTransient);
  EXPECT_THAT(creds.error().message, Not(HasSubstr("s3cr3t-token")));
  EXPECT_THAT(creds.error().message, HasSubstr("https://***@127.0.0.1:1/o/r.git"));
}

TEST_F(CliGitTest, AHungRemoteIsCutShortByTheTimeoutOrTheCancelFlag) {
  // A git daemon that takes the connection and never answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "git://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/r.git";

  CliGit timed(runner, {.allowed_schemes = {"git"}, .timeout = std::chrono::milliseconds(500)});
  auto start = std::chrono::steady_clock::now();
  auto r = timed.remote_heads(url);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_THAT(r.error().message, HasSubstr("timed out"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  std::atomic<bool> cancel{false};
  CliGit cancellable(runner, {.allowed_schemes = {"git"}, .timeout = std::chrono::seconds(60), .cancel = &cancel});
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  start = std::chrono::steady_clock::now();
  auto c = cancellable.remote_heads(url);
  stopper.join();
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kTransient);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ::close(fd);
}

TEST_F(CliGitTest, CredentialsGoToTheUrlsHostThroughTheEnvironmentNeverTheCommandLine) {
  CliGit g(runner, {.allowed_schemes = {"https"}, .timeout = std::chrono::seconds(10)});
  const std::string header = "Authorization: Basic c2VjcmV0LXRva2Vu";
  // Nothing listens there: the fetch fails, but what git was given shows.
  auto r = g.fetch({"https://user:pw@127.0.0.1:1/octo/private.git", "refs/heads/main", rev, tmp.file("auth.git"), header});
  EXPECT_FALSE(r.has_value());
  bool networked = false;
  for (const auto& call : runner.calls) {
    for (const auto& a : call.argv) EXPECT_EQ(a.find("c2VjcmV0"), std::string::npos) << a;
    if (std::find(call.argv.begin(), call.argv.end(), "fetch") == call.argv.end()) continue;
    networked = true;
    EXPECT_EQ(call.env.at("GIT_CONFIG_KEY_0"), "http.https://127.0.0.1:1/.extraHeader");
    EXPECT_EQ(call.env.at("GIT_CONFIG_VALUE_0"), header);
  }
  EXPECT_TRUE(networked);
  EXPECT_EQ(r.error().message.find("c2VjcmV0"), std::string::npos);
  EXPECT_TRUE(auth_env("file:///x", header).empty());
  EXPECT_TRUE(auth_env("https://h/x", "").empty());
  EXPECT_EQ(auth_env("http://git.example:8080/a.git", header).at("GIT_CONFIG_KEY_0"), "http.http://git.example:8080/.extraHeader");
}
