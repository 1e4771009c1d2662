// NixLogTranslator: nix's internal-json stderr back to the text `nix build
// -L` prints, escape sequences kept; strip_ansi for reading nix's errors.
#include "flurry/nix/nix_log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace flurry::nix;

namespace {

const std::string kDrv = "/nix/store/yhhff53svi9gaqbk81rmimj4vq49ij3j-hello-2.12.drv";

// Lines as Nix 2.8 writes them (shortened to the fields that matter).
const std::string kStart = R"(@nix {"action":"start","fields":[")" + kDrv +
                           R"(","",1,1],"id":7,"level":3,"text":"building ')" + kDrv + R"('","type":105})" "\n";
const std::string kGreen = R"(@nix {"action":"result","fields":["\u001b[32mgreen\u001b[0m"],"id":7,"type":101})" "\n";
const std::string kFailed =
    R"(@nix {"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"\u001b[31;1merror:\u001b[0m builder for '\u001b[35;1m)" +
    kDrv + R"(\u001b[0m' failed with exit code 2\u001b[0m"})" "\n";
const std::string kBookkeeping = R"(@nix {"action":"start","id":1,"level":0,"text":"","type":102}
@nix {"action":"start","id":2,"level":6,"text":"querying info about missing paths","type":0}
@nix {"action":"result","fields":[0,1,1,0],"id":1,"type":105}
@nix {"action":"result","fields":[101,0],"id":1,"type":106}
@nix {"action":"result","fields":["buildPhase"],"id":7,"type":104}
@nix {"action":"stop","id":2}
)";

const std::string kGreenLog = "hello> \x1b[32mgreen\x1b[0m\n";
const std::string kFailedText = "\x1b[31;1merror:\x1b[0m builder for '\x1b[35;1m" + kDrv + "\x1b[0m' failed with exit code 2\x1b[0m\n";

// The text out of feeding `in` in pieces of `piece` bytes, and how many
// times the sink was called.
struct Translated {
  std::string text;
  int calls = 0;
};
Translated translate(const std::string& in, std::size_t piece = std::string::npos, std::size_t max_line = NixLogTranslator::kMaxLine) {
  Translated t;
  NixLogTranslator tr(
      [&](std::string_view s) {
        t.text += s;
        ++t.calls;
      },
      max_line);
  for (std::size_t i = 0; i < in.size(); i += piece) tr.feed(std::string_view(in).substr(i, piece));
  tr.finish();
  return t;
}

}  // namespace

TEST(NixLog, BuildLinesArePrefixedWithTheDerivationsNameAndKeepTheirEscapes) {
  auto t = translate(kStart + kGreen);
  EXPECT_EQ(t.text, "building '" + kDrv + "'...\n" + kGreenLog);
  EXPECT_EQ(t.calls, 1);  // one chunk in, one call out
}

TEST(NixLog, LinesSplitAnywhereAcrossChunksComeOutTheSame) {
  std::string in = kStart + kBookkeeping + kGreen + "plain text\n" + kFailed;
  auto whole = translate(in);
  EXPECT_EQ(translate(in, 1).text, whole.text);
  EXPECT_EQ(translate(in, 7).text, whole.text);
  EXPECT_EQ(whole.text, "building '" + kDrv + "'...\n" + kGreenLog + "plain text\n" + kFailedText);
}

TEST(NixLog, BookkeepingSaysNothing) {
  auto t = translate(kBookkeeping);
  EXPECT_EQ(t.text, "");
  EXPECT_EQ(t.calls, 0);
}

TEST(NixLog, EachActivityHasItsOwnPrefixAndAnUnknownOneNone) {
  std::string in = R"(@nix {"action":"start","fields":["/nix/store/00000000000000000000000000000000-dep.drv"],"id":1,"level":3,"text":"","type":105}
@nix {"action":"start","fields":["/nix/store/11111111111111111111111111111111-my-tool-1.0-rc.drv"],"id":2,"level":3,"text":"","type":105}
@nix {"action":"start","fields":["/nix/store/22222222222222222222222222222222-post.drv"],"id":3,"level":3,"text":"","type":110}
@nix {"action":"result","fields":["from dep  \r"],"id":1,"type":101}
@nix {"action":"result","fields":["from tool"],"id":2,"type":101}
@nix {"action":"result","fields":["uploaded"],"id":3,"type":107}
@nix {"action":"result","fields":["from nowhere"],"id":99,"type":101}
@nix {"action":"stop","id":1}
@nix {"action":"result","fields":["after stop"],"id":1,"type":101}
)";
  EXPECT_EQ(translate(in).text, "dep> from dep\nmy-tool> from tool\npost (post)> uploaded\nfrom nowhere\nafter stop\n");
}

TEST(NixLog, NixsMessagesAreShownAtItsDefaultVerbosity) {
  std::string in = R"(@nix {"action":"msg","level":1,"msg":"\u001b[35;1mwarning:\u001b[0m low disk"}
@nix {"action":"msg","level":5,"msg":"chatty detail"}
@nix {"action":"msg","msg":"no level\nsecond line"}
)";
  EXPECT_EQ(translate(in).text, "\x1b[35;1mwarning:\x1b[0m low disk\nno level\nsecond line\n");
}

TEST(NixLog, WhatIsNotNixsJsonPassesThroughUnchanged) {
  std::string in =
      "error: unrecognised flag '--bogus'\n"
      "x> made by an older nix\n"
      "@nix {not json\n"
      "@nix [1,2,3]\n"
      "@nix {\"no\":\"action\"}\n"
      "@nixish line\n"
      "\n"
      "last line without newline";
  EXPECT_EQ(translate(in).text, in);
  EXPECT_EQ(translate(in, 3).text, in);
}

TEST(NixLog, WrongTypesAreNeverACrashAndPassThrough) {
  std::vector<std::string> hostile = {
      R"(@nix {"action":5})",
      R"(@nix {"action":"start","id":"7","type":105,"text":"x"})",
      R"(@nix {"action":"start","id":7,"type":105,"text":3})",
      R"(@nix {"action":"start","id":-7,"type":105,"text":"x"})",
      R"(@nix {"action":"result","id":7,"type":"101","fields":["x"]})",
      R"(@nix {"action":"result","id":7,"type":101,"fields":"x"})",
      R"(@nix {"action":"result","id":7,"type":101,"fields":[[1]]})",
      R"(@nix {"action":"result","id":7,"type":101,"fields":[]})",
      R"(@nix {"action":"result","id":1.5,"type":101,"fields":["x"]})",
      R"(@nix {"action":"msg","msg":null})",
      R"(@nix {"action":"msg","msg":{"a":1}})",
      "@nix " + std::string(100000, '['),
  };
  for (const auto& line : hostile) EXPECT_EQ(translate(line + "\n").text, line + "\n") << line;
  // Right types in odd places still read.
  EXPECT_EQ(translate(R"(@nix {"action":"start","id":7,"type":105,"text":"t","fields":[1],"level":"high"})" "\n").text, "t...\n");
  EXPECT_EQ(translate(R"(@nix {"action":"stop","id":"x"})" "\n").text, "");
  EXPECT_EQ(translate(R"(@nix {"action":"someday","id":7})" "\n").text, "");
}

TEST(NixLog, AnOverlongLineIsPassedOnInsteadOfBuffered) {
  std::string huge = R"(@nix {"action":"msg","msg":")" + std::string(5000, 'a') + "\"}";
  std::string out;
  NixLogTranslator tr([&](std::string_view s) { out += s; }, 1024);
  for (std::size_t fed = 0; fed < huge.size(); fed += 100) {
    tr.feed(std::string_view(huge).substr(fed, 100));
    // Held back: at most the bound and one chunk.
    EXPECT_LE(std::min(fed + 100, huge.size()) - out.size(), 1024u + 100u);
  }
  EXPECT_EQ(out, huge);  // as it is, past the bound
  tr.feed("\n" + kStart + kGreen);
  tr.finish();
  // Its end too, then translation goes on with the next line.
  EXPECT_EQ(out, huge + "\n" + "building '" + kDrv + "'...\n" + kGreenLog);
}

TEST(NixLog, AnUnterminatedJsonLineIsTranslatedAtTheEnd) {
  std::string in = kStart + kGreen.substr(0, kGreen.size() - 1);
  EXPECT_EQ(translate(in, 5).text, "building '" + kDrv + "'...\n" + kGreenLog);
}

TEST(NixLog, StripAnsiLeavesWhatNixPrintsToAPipe) {
  EXPECT_EQ(strip_ansi(kFailedText), "error: builder for '" + kDrv + "' failed with exit code 2\n");
  EXPECT_EQ(strip_ansi("a\x1b[1;38;5;200mb\x1b[0m\x1b[Kc\x1b" "7d\x1b]8;;http://x\x1b\\link\x1b]8;;\ae\n"), "abcdlinke\n");
  EXPECT_EQ(strip_ansi("unfinished \x1b[12"), "unfinished ");
  EXPECT_EQ(strip_ansi("osc \x1b]0;title\nnext"), "osc \nnext");  // never past the line
  EXPECT_EQ(strip_ansi("lone \x1b\nline"), "lone \nline");
  EXPECT_EQ(strip_ansi("plain\ttext\n"), "plain\ttext\n");
}
