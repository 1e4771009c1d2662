#include "request_reader.hpp"

#include <gtest/gtest.h>

using namespace flurry::http;
using Status = RequestReader::Status;

namespace {

struct Fed {
  Status status;
  RequestReader reader;
  std::string rest;
};

// Feeds `bytes` in pieces of `step` (0 = all at once).
Fed feed(const std::string& bytes, std::size_t step = 0, ReaderLimits limits = {}) {
  Fed f{Status::kNeedMore, RequestReader(limits), {}};
  std::string in;
  std::size_t at = 0;
  do {
    auto n = step == 0 ? bytes.size() - at : std::min(step, bytes.size() - at);
    in.append(bytes, at, n);
    at += n;
    f.status = f.reader.consume(in);
  } while (f.status == Status::kNeedMore && at < bytes.size());
  f.rest = in;
  return f;
}

}  // namespace

TEST(RequestReader, ReadsAHeadAndFixedBodyWhetherWholeOrByteByByte) {
  const std::string req =
      "POST /webhooks/github?x=1 HTTP/1.1\r\nHost: a\r\nX-GitHub-Event:  push \r\nContent-Length: 5\r\n\r\nhello";
  for (std::size_t step : {0u, 1u, 7u}) {
    auto f = feed(req, step);
    ASSERT_EQ(f.status, Status::kComplete) << step;
    EXPECT_EQ(f.reader.request().method, "POST");
    EXPECT_EQ(f.reader.request().path, "/webhooks/github");
    EXPECT_EQ(f.reader.request().query, "x=1");
    EXPECT_EQ(f.reader.request().header("x-github-event"), "push");
    EXPECT_EQ(f.reader.request().body, "hello");
    EXPECT_TRUE(f.reader.keep_alive());
    EXPECT_TRUE(f.rest.empty());
  }
}

TEST(RequestReader, LeavesAPipelinedRequestInTheBuffer) {
  auto f = feed("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(f.status, Status::kComplete);
  EXPECT_EQ(f.reader.request().path, "/a");
  EXPECT_EQ(f.rest, "GET /b HTTP/1.1\r\n\r\n");
  f.reader.reset();
  ASSERT_EQ(f.reader.consume(f.rest), Status::kComplete);
  EXPECT_EQ(f.reader.request().path, "/b");
}

TEST(RequestReader, DecodesChunkedBodiesAndDropsTrailers) {
  const std::string req =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (std::size_t step : {0u, 1u, 3u}) {
    auto f = feed(req, step);
    ASSERT_EQ(f.status, Status::kComplete) << step;
    EXPECT_EQ(f.reader.request().body, "hello world");
    EXPECT_EQ(f.reader.request().header("x-trailer"), "");
    if (step == 0) {
      EXPECT_EQ(f.rest, "NEXT");
    }
  }
}

TEST(RequestReader, DecodesThePathAndAcceptsAbsoluteForm) {
  auto f = feed("GET http://example.com/files/a%20b?q=%20#frag HTTP/1.1\r\n\r\n");
  ASSERT_EQ(f.status, Status::kComplete);
  EXPECT_EQ(f.reader.request().path, "/files/a b");
  EXPECT_EQ(f.reader.request().query, "q=%20");
}

TEST(RequestReader, ConnectionHeaderAndVersionDecideKeepAlive) {
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").reader.keep_alive());
  EXPECT_FALSE(feed("GET / HTTP/1.0\r\n\r\n").reader.keep_alive());
  EXPECT_TRUE(feed("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").reader.keep_alive());
}

TEST(RequestReader, AsksForContinueOnceWhenTheClientWaitsForIt) {
  RequestReader r({});
  std::string in = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
  ASSERT_EQ(r.consume(in), Status::kNeedMore);
  EXPECT_TRUE(r.take_continue());
  EXPECT_FALSE(r.take_continue());
  in = "abc";
  ASSERT_EQ(r.consume(in), Status::kComplete);
  EXPECT_EQ(r.request().body, "abc");
}

TEST(RequestReader, IgnoresBlankLinesBeforeARequestAndIsNotStartedByThem) {
  RequestReader r({});
  std::string in = "\r\n\r\n";
  EXPECT_EQ(r.consume(in), Status::kNeedMore);
  EXPECT_FALSE(r.started());
  in += "GET";
  EXPECT_EQ(r.consume(in), Status::kNeedMore);
  EXPECT_TRUE(r.started());
}

TEST(RequestReader, RefusesWhatCouldSmuggleOrTakeMemoryWithTheRightStatus) {
  ReaderLimits small;
  small.max_head = 256;
  small.max_body = 10;
  small.max_headers = 4;
  struct Case {
    std::string bytes;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 431},
      {"GET /" + std::string(300, 'a'), 431},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(2000, 'e') + "\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / FOO\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\n\r\n", 400},
      {"GET /a b HTTP/1.1\r\n\r\n", 400},
      {"G\x01T / HTTP/1.1\r\n\r\n", 400},
      {"GET /%zz HTTP/1.1\r\n\r\n", 400},
      {"GET /%2 HTTP/1.1\r\n\r\n", 400},
      {"GET /a%00b HTTP/1.1\r\n\r\n", 400},
      {"GET example.com:443 HTTP/1.1\r\n\r\n", 400},
      {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15), 400},  // TLS
  };
  for (const auto& c : cases) {
    auto f = feed(c.bytes, 0, small);
    EXPECT_EQ(f.status, Status::kFailed) << c.bytes;
    EXPECT_EQ(f.reader.error_status(), c.status) << c.bytes << ": " << f.reader.error_message();
    EXPECT_FALSE(f.reader.keep_alive());
  }
}

TEST(RequestReader, ATargetOverEightKilobytesIs414) {
  auto f = feed("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n");
  ASSERT_EQ(f.status, Status::kFailed);
  EXPECT_EQ(f.reader.error_status(), 414);
}

TEST(DecodePath, DecodesEscapesAndRefusesBrokenOnes) {
  std::string out;
  EXPECT_TRUE(decode_path("/a%2Fb%2e%2E", out));
  EXPECT_EQ(out, "/a/b..");
  EXPECT_FALSE(decode_path("/a%", out));
  EXPECT_FALSE(decode_path("/a%4", out));
  EXPECT_FALSE(decode_path("/a%g0", out));
}

TEST(SerializeResponse, StripsLineBreaksFromHeaderValuesAndSetsTheFraming) {
  Response r{302, "x"};
  r.headers["Location"] = "/a\r\nSet-Cookie: evil";
  r.headers["Content-Length"] = "999";
  r.headers["Bad Name"] = "v";
  auto bytes = serialize_response(r, false);
  EXPECT_EQ(bytes.rfind("HTTP/1.1 302 Found\r\n", 0), 0u);
  EXPECT_NE(bytes.find("Location: /aSet-Cookie: evil\r\n"), std::string::npos);
  EXPECT_EQ(bytes.find("\r\nSet-Cookie"), std::string::npos);
  EXPECT_EQ(bytes.find("999"), std::string::npos);
  EXPECT_EQ(bytes.find("Bad Name"), std::string::npos);
  EXPECT_NE(bytes.find("Content-Length: 1\r\nConnection: close\r\n\r\nx"), std::string::npos);
}

TEST(SerializeStreamHead, ChunkedForHttp11AndEndingAtCloseOtherwiseWithTheHandlersFramingDropped) {
  Response r{200, "", "text/event-stream"};
  r.headers["Content-Length"] = "5";
  r.headers["Transfer-Encoding"] = "gzip";
  EXPECT_EQ(serialize_stream_head(r, true, true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            "X-Accel-Buffering: no\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(serialize_stream_head(r, true, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n");
  r.headers["X-Accel-Buffering"] = "yes";
  auto head = serialize_stream_head(r, false, true);
  EXPECT_NE(head.find("X-Accel-Buffering: yes\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("X-Accel-Buffering: no"), std::string::npos) << head;
}

TEST(FramePiece, ChunksNonEmptyPiecesOnly) {
  EXPECT_EQ(frame_piece(std::string(26, 'a'), true), "1a\r\n" + std::string(26, 'a') + "\r\n");
  EXPECT_EQ(frame_piece("", true), "");  // an empty chunk would end the body
  EXPECT_EQ(frame_piece("abc", false), "abc");
}

TEST(RequestReader, TellsAnHttp10ClientApart) {
  auto f = feed("GET / HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(f.reader.http10());
  f.reader.reset();
  EXPECT_FALSE(f.reader.http10());
  EXPECT_FALSE(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n").reader.http10());
}
