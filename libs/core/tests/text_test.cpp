#include "flurry/core/text.hpp"

#include <gtest/gtest.h>

using namespace flurry::text;

TEST(Text, PercentEncodingLeavesOnlyUnreservedBytes) {
  EXPECT_EQ(percent_encode("a-Z_0.~"), "a-Z_0.~");
  EXPECT_EQ(percent_encode("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
  EXPECT_EQ(percent_encode(std::string("\xff\x00", 2)), "%FF%00");
  EXPECT_EQ(percent_encode(""), "");
}

TEST(Text, SafeFileNameNeutralisesTraversalAndSeparators) {
  EXPECT_EQ(safe_file_name("../../etc/passwd"), "_.._.._etc_passwd");
  EXPECT_EQ(safe_file_name(".."), "_..");
  EXPECT_EQ(safe_file_name(""), "_");
  EXPECT_EQ(safe_file_name("-rf"), "_-rf");
  EXPECT_EQ(safe_file_name("owner/repo"), "owner_repo");
  EXPECT_EQ(safe_file_name("a b;$(x)"), "a_b___x_");
}

TEST(Text, NixStringLiteralEscapesInterpolationAndQuotes) {
  EXPECT_EQ(nix_string_literal("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(nix_string_literal("${x}"), "\"\\${x}\"");
  EXPECT_EQ(nix_string_literal("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(nix_string_literal("$a"), "\"$a\"");
}

TEST(Text, IsSha1HexRequiresFortyHexDigits) {
  EXPECT_TRUE(is_sha1_hex("0123456789abcdef0123456789abcdef01234567"));
  EXPECT_FALSE(is_sha1_hex("0123456"));
  EXPECT_FALSE(is_sha1_hex("g123456789abcdef0123456789abcdef01234567"));
}

TEST(Text, TruncateUtf8NeverSplitsACharacter) {
  std::string s = "ab\xC3\xA9\xC3\xA9\xC3\xA9";  // abééé
  EXPECT_EQ(truncate_utf8(s, 6), "ab\xE2\x80\xA6");  // "abé…" would be 7 bytes
  EXPECT_EQ(truncate_utf8(s, 7), "ab\xC3\xA9\xE2\x80\xA6");
  EXPECT_EQ(truncate_utf8("short", 10), "short");
}

TEST(Text, TailLinesKeepsTheLastLines) {
  EXPECT_EQ(tail_lines("a\nb\nc\n", 2), "b\nc\n");
  EXPECT_EQ(tail_lines("a\nb\nc", 5), "a\nb\nc");
  EXPECT_EQ(tail_lines("a\nb\nc", 1), "c");
}

TEST(Text, SplitKeepsEmptyParts) {
  EXPECT_EQ(split("a..b", '.'), (std::vector<std::string>{"a", "", "b"}));
}

TEST(Text, DisplayUrlHidesCredentialsOnly) {
  EXPECT_EQ(display_url("https://u:secret@cache.example/x?y=1"), "https://***@cache.example/x?y=1");
  EXPECT_EQ(display_url("https://tok@h?x=a@b"), "https://***@h?x=a@b");
  EXPECT_EQ(display_url("https://cache.example/a@b"), "https://cache.example/a@b");
  EXPECT_EQ(display_url("git@github.com:o/r.git"), "git@github.com:o/r.git");
  EXPECT_EQ(display_url("file:///var/cache"), "file:///var/cache");
}

TEST(Text, HideUrlReplacesEveryQuoteOfTheUrl) {
  const std::string url = "https://u:secret@cache.example";
  EXPECT_EQ(hide_url("unable to download '" + url + "/nix-cache-info'; tried " + url, url),
            "unable to download 'https://***@cache.example/nix-cache-info'; tried https://***@cache.example");
  EXPECT_EQ(hide_url("nothing here", url), "nothing here");
  EXPECT_EQ(hide_url("https://plain.example/x", "https://plain.example"), "https://plain.example/x");
}

TEST(Text, ValidUtf8AcceptsWellFormedTextOnly) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("a\x80" "b"));            // stray continuation
}
