// The HTTP server's request reader on arbitrary bytes: the first thing every
// service does with what a client sends. The first byte picks where the
// rest is cut into pieces, so split reads are fuzzed too. Properties:
// - the answer does not depend on how the bytes arrived (whole or in
//   pieces): the same status, the same request, the same bytes left over;
// - what it accepts respects the limits and is framed as the client said;
// - a refusal carries a 4xx or 5xx status and closes the connection;
// - an answer built from the request (its path in a header, say) never
//   carries a line break into the headers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "finding.hpp"
#include "request_reader.hpp"

namespace {

using namespace flurry;
using http::RequestReader;
using Status = RequestReader::Status;

struct Outcome {
  Status status = Status::kNeedMore;
  int error = 0;
  http::Request request;
  std::string rest;
  bool keep_alive = false;
};

http::ReaderLimits limits() {
  http::ReaderLimits l;
  l.max_head = 2048;
  l.max_headers = 16;
  l.max_body = 4096;
  return l;
}

Outcome read(const std::string& bytes, std::size_t step) {
  RequestReader reader(limits());
  std::string in;
  Outcome o;
  std::size_t at = 0;
  while (true) {
    std::size_t n = step == 0 ? bytes.size() - at : std::min(step, bytes.size() - at);
    in.append(bytes, at, n);
    at += n;
    o.status = reader.consume(in);
    (void)reader.take_continue();
    if (o.status != Status::kNeedMore || at >= bytes.size()) break;
  }
  o.error = reader.error_status();
  o.request = reader.request();
  o.keep_alive = reader.keep_alive();
  o.rest = in + bytes.substr(at);  // what follows the request, fed or not
  return o;
}

// Lines of an answer's head (up to its blank line), checked for injection.
void check_head(const std::string& out, std::size_t expected_lines) {
  const auto head_end = out.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    fuzz::finding("an answer without the end of its head");
    return;
  }
  const std::string head = out.substr(0, head_end + 2);
  std::size_t lines = 0;
  for (std::size_t at = head.find("\r\n"); at != std::string::npos; at = head.find("\r\n", at + 2)) ++lines;
  if (lines != expected_lines) fuzz::finding("the answer's head has injected lines", head);
  if (head.find('\n') != head.find("\r\n") + 1) fuzz::finding("a bare line feed in the answer's head", head);
}

bool same(const Outcome& a, const Outcome& b) {
  if (a.status != b.status) return false;
  if (a.status == Status::kFailed) return a.error == b.error;
  if (a.status == Status::kNeedMore) return true;  // both wait for more
  return a.request.method == b.request.method && a.request.path == b.request.path && a.request.query == b.request.query &&
         a.request.headers == b.request.headers && a.request.body == b.request.body && a.rest == b.rest &&
         a.keep_alive == b.keep_alive;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = data[0] % 17;  // 0: all at once
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Outcome whole = read(bytes, 0);
  const Outcome pieces = read(bytes, step == 0 ? 1 : step);
  if (!same(whole, pieces)) {
    fuzz::finding("the request read depends on how its bytes were split",
                  "whole status " + std::to_string(static_cast<int>(whole.status)) + "/" + std::to_string(whole.error) +
                      ", in pieces of " + std::to_string(step == 0 ? 1 : step) + " status " +
                      std::to_string(static_cast<int>(pieces.status)) + "/" + std::to_string(pieces.error));
  }
  if (whole.status == Status::kFailed) {
    if (whole.error < 400 || whole.error > 599) fuzz::finding("a refusal without an error status", std::to_string(whole.error));
    if (whole.keep_alive) fuzz::finding("a refused request keeps its connection");
    return 0;
  }
  if (whole.status != Status::kComplete) return 0;
  const auto& r = whole.request;
  if (r.body.size() > limits().max_body) fuzz::finding("a body over the limit was accepted");
  if (r.path.empty() || r.path.find('\0') != std::string::npos) fuzz::finding("an empty path or a NUL in it", r.path);
  if (r.method.empty()) fuzz::finding("an empty method");
  if (auto cl = r.header("content-length"); !cl.empty() && std::stoull(cl) != r.body.size()) {
    fuzz::finding("the body is not the length the client declared", cl);
  }
  for (const auto& [name, value] : r.headers) {
    if (value.find('\r') != std::string::npos || value.find('\n') != std::string::npos) fuzz::finding("a line break in a header", name);
  }
  http::Response answer{200, r.body};
  answer.headers["Location"] = r.path;
  answer.headers["X-Query"] = r.query;
  // Status line, Location, X-Query, Content-Type, Content-Length, Connection.
  check_head(http::serialize_response(answer, whole.keep_alive), 6);
  // A streamed answer's: status line, Location, X-Query, Content-Type,
  // Transfer-Encoding, X-Accel-Buffering, Connection.
  check_head(http::serialize_stream_head(answer, whole.keep_alive, true), 7);
  return 0;
}
