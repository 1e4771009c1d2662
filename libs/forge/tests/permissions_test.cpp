// Write-access checks against the real fake forge (tests/fakes).
#include "flurry/forge/permissions.hpp"

#include <gtest/gtest.h>

#include "flurry/fakes/fake_forge.hpp"

using namespace flurry;
using namespace flurry::forge;

TEST(Permissions, EachForgeSaysWhoMayWrite) {
  fakes::FakeForge forge;
  auto client = http::make_client();
  FixedToken gh_token("gh");
  forge.set_permission("github", "octo", "hello", "maintainer", "write");
  forge.set_permission("github", "octo", "hello", "reader", "read");
  GitHubPermissions github(*client, forge.url(), gh_token);
  EXPECT_TRUE(*github.can_write("octo", "hello", "maintainer"));
  EXPECT_FALSE(*github.can_write("octo", "hello", "reader"));
  EXPECT_FALSE(*github.can_write("octo", "hello", "stranger"));
  EXPECT_FALSE(*github.can_write("octo", "hello", ""));

  forge.set_token("gitea", "gt");
  forge.set_permission("gitea", "org", "hello", "owner-user", "owner");
  forge.set_permission("gitea", "org", "hello", "visitor", "read");
  GiteaPermissions gitea(*client, forge.url(), "gt");
  EXPECT_TRUE(*gitea.can_write("org", "hello", "owner-user"));
  EXPECT_FALSE(*gitea.can_write("org", "hello", "visitor"));

  forge.set_token("gitlab", "gl");
  forge.add_repository("gitlab", "group/sub", "hello");
  forge.set_permission("gitlab", "group/sub", "hello", "dev", "30");
  forge.set_permission("gitlab", "group/sub", "hello", "guest", "10");
  GitLabPermissions gitlab(*client, forge.url(), "gl");
  EXPECT_TRUE(*gitlab.can_write("group/sub", "hello", "dev"));
  EXPECT_FALSE(*gitlab.can_write("group/sub", "hello", "guest"));
  EXPECT_FALSE(*gitlab.can_write("group/sub", "hello", "nobody"));
}

TEST(Permissions, AForgeThatFailsIsTransientAndAWrongTokenIsNot) {
  fakes::FakeForge forge;
  auto client = http::make_client();
  forge.set_token("gitea", "right");
  GiteaPermissions wrong(*client, forge.url(), "wrong");
  auto denied = wrong.can_write("org", "hello", "someone");
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().code, ErrorCode::kRejected);
  GiteaPermissions right(*client, forge.url(), "right");
  forge.fail_next(1, 502, "bad gateway");
  auto down = right.can_write("org", "hello", "someone");
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);
}
