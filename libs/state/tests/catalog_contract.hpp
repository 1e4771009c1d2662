#pragma once
// The Catalog contract, as typed tests. Instantiate with a factory type
// providing `static std::unique_ptr<Catalog> make();` (a fresh, empty
// namespace each call).
#include <gtest/gtest.h>

#include <memory>
#include <set>

#include "flurry/state/catalog.hpp"

namespace flurry::state::catalog_contract {

template <typename Factory>
class CatalogContract : public ::testing::Test {
 protected:
  void SetUp() override { catalog = Factory::make(); }
  static msg::Repo repo(const std::string& name = "hello", const std::string& owner = "octo") {
    return {"github", owner, name, "https://example.invalid/" + owner + "/" + name + ".git", "https://example.invalid/" + owner + "/" + name,
            "main"};
  }
  static msg::ChangeEvent push(const msg::Repo& r, const std::string& branch) {
    msg::ChangeEvent c;
    c.kind = "push";
    c.repo = r;
    c.ref = "refs/heads/" + branch;
    c.branch = branch;
    return c;
  }
  static msg::ChangeEvent pull_request(const msg::Repo& r, int number, const std::string& title) {
    msg::ChangeEvent c;
    c.kind = "pull_request";
    c.repo = r;
    c.ref = "refs/pull/" + std::to_string(number) + "/head";
    c.pull_request.number = number;
    c.pull_request.title = title;
    return c;
  }
  void file(const std::string& eval, const msg::ChangeEvent& c, std::int64_t ms) {
    ASSERT_TRUE(catalog->file_eval(filing_of(eval, c, ms)).has_value());
  }
  // Every eval id of a listing, page by page.
  std::vector<std::string> all_pages(const ProjectKey& p, const std::string& ref, std::size_t limit) {
    std::vector<std::string> out;
    std::string cursor;
    for (int guard = 0; guard < 1000; ++guard) {
      auto page = catalog->evals(p, ref, cursor, limit);
      EXPECT_TRUE(page.has_value());
      if (!page) break;
      EXPECT_LE(page->eval_ids.size(), limit);
      out.insert(out.end(), page->eval_ids.begin(), page->eval_ids.end());
      if (page->next_cursor.empty()) break;
      cursor = page->next_cursor;
    }
    return out;
  }
  std::unique_ptr<Catalog> catalog;
};

TYPED_TEST_SUITE_P(CatalogContract);

TYPED_TEST_P(CatalogContract, ProjectsAndRefsAreListedNewestActivityFirstWithTheirLatestEval) {
  auto& c = *this->catalog;
  const auto hello = this->repo("hello"), world = this->repo("world");
  this->file("e1", this->push(hello, "main"), 100);
  this->file("e2", this->push(world, "main"), 200);
  this->file("e3", this->pull_request(hello, 12, "Add a check"), 300);
  this->file("e4", this->push(hello, "main"), 250);
  auto projects = *c.projects(10);
  ASSERT_EQ(projects.size(), 2u);
  EXPECT_EQ(projects[0].key, (ProjectKey{"github", "octo", "hello"}));
  EXPECT_EQ(projects[0].last_activity_ms, 300);
  EXPECT_EQ(projects[0].html_url, "https://example.invalid/octo/hello");
  EXPECT_EQ(projects[0].default_branch, "main");
  EXPECT_EQ(projects[1].key.repo, "world");
  EXPECT_EQ(c.projects(1)->size(), 1u);

  auto refs = *c.refs({"github", "octo", "hello"}, 10);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0], (CatalogRef{"refs/pull/12/head", "pull_request", "#12", 12, "Add a check", true, 300, "e3"}));
  EXPECT_EQ(refs[1], (CatalogRef{"refs/heads/main", "branch", "main", 0, "", true, 250, "e4"}));
  EXPECT_EQ(c.ref({"github", "octo", "hello"}, "refs/heads/main")->value().latest_eval, "e4");
  EXPECT_FALSE(c.ref({"github", "octo", "hello"}, "refs/heads/none")->has_value());
  EXPECT_FALSE(c.project({"github", "octo", "nothing"})->has_value());
  EXPECT_TRUE(c.refs({"github", "octo", "nothing"}, 10)->empty());
}

TYPED_TEST_P(CatalogContract, AnOlderEvalFiledLateChangesNoLatestAndARepeatChangesNothing) {
  auto& c = *this->catalog;
  const auto hello = this->repo();
  this->file("new", this->push(hello, "main"), 500);
  this->file("old", this->push(hello, "main"), 100);
  this->file("new", this->push(hello, "main"), 500);
  EXPECT_EQ(c.ref({"github", "octo", "hello"}, "refs/heads/main")->value().latest_eval, "new");
  EXPECT_EQ(c.project({"github", "octo", "hello"})->value().last_activity_ms, 500);
  EXPECT_EQ(this->all_pages({"github", "octo", "hello"}, "refs/heads/main", 10), (std::vector<std::string>{"new", "old"}));
}

TYPED_TEST_P(CatalogContract, AClosedPullRequestIsNotOpenUntilANewEvalOfIt) {
  auto& c = *this->catalog;
  const auto hello = this->repo();
  const ProjectKey p{"github", "octo", "hello"};
  this->file("e1", this->pull_request(hello, 7, "Fix"), 100);
  ASSERT_TRUE(c.close_ref(p, "refs/pull/7/head").has_value());
  EXPECT_FALSE(c.ref(p, "refs/pull/7/head")->value().open);
  // A replay of its eval does not reopen it; a new push to it does.
  this->file("e1", this->pull_request(hello, 7, "Fix"), 100);
  EXPECT_FALSE(c.ref(p, "refs/pull/7/head")->value().open);
  this->file("e2", this->pull_request(hello, 7, "Fix, again"), 200);
  EXPECT_TRUE(c.ref(p, "refs/pull/7/head")->value().open);
  EXPECT_EQ(c.ref(p, "refs/pull/7/head")->value().title, "Fix, again");
  ASSERT_TRUE(c.close_ref(p, "refs/pull/99/head").has_value());  // never filed: nothing
  EXPECT_FALSE(c.ref(p, "refs/pull/99/head")->has_value());
}

TYPED_TEST_P(CatalogContract, EvalPagesNeitherRepeatNorSkipEvenForEvalsOfTheSameMillisecond) {
  auto& c = *this->catalog;
  const auto hello = this->repo();
  const ProjectKey p{"github", "octo", "hello"};
  std::vector<std::string> want;
  // 25 evals, some sharing a millisecond, on two refs.
  for (int i = 0; i < 25; ++i) {
    const auto id = "e" + std::string(i < 10 ? "0" : "") + std::to_string(i);
    this->file(id, this->push(hello, i % 2 ? "main" : "dev"), 1000 + i / 3);
    want.push_back(id);
  }
  std::reverse(want.begin(), want.end());  // ids ascend with time here: newest first is descending
  for (std::size_t limit : {1u, 2u, 3u, 7u, 25u, 100u}) {
    EXPECT_EQ(this->all_pages(p, "", limit), want) << "limit " << limit;
  }
  std::vector<std::string> main_only;
  for (const auto& id : want) {
    if (std::stoi(id.substr(1)) % 2) main_only.push_back(id);
  }
  EXPECT_EQ(this->all_pages(p, "refs/heads/main", 4), main_only);
  // Filing more while paging: a cursor still neither repeats nor skips.
  auto first = *c.evals(p, "", "", 5);
  this->file("late", this->push(hello, "main"), 5000);
  std::vector<std::string> seen = first.eval_ids;
  auto rest = first.next_cursor;
  while (!rest.empty()) {
    auto page = *c.evals(p, "", rest, 5);
    seen.insert(seen.end(), page.eval_ids.begin(), page.eval_ids.end());
    rest = page.next_cursor;
  }
  EXPECT_EQ(seen, want);
  EXPECT_TRUE(c.evals(p, "refs/heads/none", "", 5)->eval_ids.empty());
  EXPECT_TRUE(c.evals({"github", "x", "y"}, "", "", 5)->eval_ids.empty());
}

TYPED_TEST_P(CatalogContract, ACursorNoCatalogMadeIsRejected) {
  auto& c = *this->catalog;
  const ProjectKey p{"github", "octo", "hello"};
  for (const std::string& bad : std::vector<std::string>{"x", "-e1", "12-", "12-e1 OR 1", "999999999999999999999999-e1", "-5-e1",
                                                        std::string(300, '1') + "-e"}) {
    auto page = c.evals(p, "", bad, 5);
    ASSERT_FALSE(page.has_value()) << bad;
    EXPECT_EQ(page.error().code, ErrorCode::kRejected) << bad;
  }
}

TYPED_TEST_P(CatalogContract, HostileNamesAreFiledExactlyAndKeptApart) {
  auto& c = *this->catalog;
  msg::Repo a{"gitlab", "group/sub", "x\ny", "file:///a", "", "main"};
  msg::Repo b{"gitlab", "group", "sub/x\ny", "file:///b", "", "main"};
  auto pa = this->push(a, "feat/\xff:*?[]");
  this->file("ea", pa, 10);
  this->file("eb", this->push(b, "main"), 20);
  auto refs = *c.refs({"gitlab", "group/sub", "x\ny"}, 10);
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].ref, "refs/heads/feat/\xff:*?[]");
  EXPECT_EQ(refs[0].name, "feat/\xff:*?[]");
  EXPECT_EQ(this->all_pages({"gitlab", "group", "sub/x\ny"}, "", 10), std::vector<std::string>{"eb"});
  EXPECT_EQ(c.projects(10)->size(), 2u);
}

TYPED_TEST_P(CatalogContract, FilingsOfEveryKindNameTheirRef) {
  auto r = this->repo();
  auto tag = this->push(r, "x");
  tag.ref = "refs/tags/v1.2";
  tag.tag = "v1.2";
  auto f = filing_of("e", tag, 5);
  EXPECT_EQ(f.kind, "tag");
  EXPECT_EQ(f.name, "v1.2");
  auto mr = this->push(r, "x");
  mr.ref = "refs/merge-requests/4/head";  // a GitLab merge request's change names its number
  mr.pull_request.number = 4;
  EXPECT_EQ(filing_of("e", mr, 5).name, "#4");
  auto closed = this->push(r, "x");
  closed.ref = "refs/pull/9/head";  // a close names the ref only
  EXPECT_EQ(filing_of("e", closed, 5).number, 9);
  EXPECT_EQ(filing_of("e", this->push(r, "main"), 5).kind, "branch");
}

REGISTER_TYPED_TEST_SUITE_P(CatalogContract, ProjectsAndRefsAreListedNewestActivityFirstWithTheirLatestEval,
                            AnOlderEvalFiledLateChangesNoLatestAndARepeatChangesNothing, AClosedPullRequestIsNotOpenUntilANewEvalOfIt,
                            EvalPagesNeitherRepeatNorSkipEvenForEvalsOfTheSameMillisecond, ACursorNoCatalogMadeIsRejected,
                            HostileNamesAreFiledExactlyAndKeptApart, FilingsOfEveryKindNameTheirRef);

}  // namespace flurry::state::catalog_contract
