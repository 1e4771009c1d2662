#include "flurry/core/crypto.hpp"

#include <gtest/gtest.h>

using namespace flurry::crypto;

TEST(Crypto, HmacMatchesGithubDocumentedExample) {
  // From GitHub's "Validating webhook deliveries" documentation.
  EXPECT_EQ(hmac_sha256_hex("It's a Secret to Everybody", "Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST(Crypto, Sha256OfEmptyString) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, ConstantTimeEqualComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}

TEST(Crypto, RandomHexHasTheAskedLengthAndDiffersEachTime) {
  auto a = random_hex(16), b = random_hex(16);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
  EXPECT_EQ(random_hex(0), "");
}

TEST(Crypto, Base64AsRfc4648) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64("x-access-token:t\xff"), "eC1hY2Nlc3MtdG9rZW46dP8=");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
}

TEST(Crypto, Unbase64InvertsBase64AndRefusesWhatIsNot) {
  for (std::string s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"), std::string("\0\xff\xfe\x01", 4)}) {
    auto back = unbase64(base64(s));
    ASSERT_TRUE(back.has_value()) << base64(s);
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(unbase64("Zg=").has_value());
  EXPECT_FALSE(unbase64("Zm9v!!==").has_value());
  EXPECT_FALSE(unbase64("a b=").has_value());
  EXPECT_FALSE(unbase64("Zg==Zg==").has_value());  // padding inside
  EXPECT_FALSE(unbase64("====").has_value());
  EXPECT_FALSE(unbase64("Zg=a").has_value());
}
