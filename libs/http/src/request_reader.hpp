#pragma once
// Incremental HTTP/1.1 request reading (RFC 9112) for the server: bytes in,
// one complete Request (or one error status) out. Pure: no sockets, no
// clocks, so it is unit-tested and fuzzed on its own.
//
// It is strict where leniency lets requests be smuggled or memory be taken:
// Content-Length together with Transfer-Encoding, conflicting lengths,
// obsolete line folding and bare CRs are errors; the head and the body are
// bounded; codings other than chunked are refused.
#include <cstddef>
#include <string>

#include "flurry/http/http.hpp"

namespace flurry::http {

struct ReaderLimits {
  std::size_t max_head = 64 * 1024;  // request line + headers (431/414 above)
  std::size_t max_headers = 128;     // header fields (431 above)
  std::size_t max_body = 25 * 1024 * 1024;  // decoded body (413 above)
};

class RequestReader {
 public:
  enum class Status { kNeedMore, kComplete, kFailed };

  explicit RequestReader(ReaderLimits limits) : limits_(limits) {}

  // Consumes from the front of `in` the bytes that belong to the current
  // request (leaving what follows it, e.g. a pipelined request).
  // kComplete: request() is whole; kFailed: error_status() says why, and
  // the connection must be closed after answering it.
  Status consume(std::string& in);

  // The head is read and the client waits for "100 Continue" before it
  // sends the body. True once per request.
  bool take_continue();
  // Some bytes of a request (beyond blank lines) have arrived.
  bool started() const { return phase_ != Phase::kHead || started_; }
  // After kComplete: whether the connection may carry another request.
  bool keep_alive() const { return keep_alive_; }
  // After kComplete: the client spoke HTTP/1.0 (so it cannot read chunked
  // responses).
  bool http10() const { return http10_; }

  Request& request() { return request_; }
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

  // Ready for the next request on the same connection.
  void reset();

 private:
  enum class Phase { kHead, kFixedBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kDone, kFailed };

  Status fail(int status, std::string message);
  Status parse_head(const std::string& head);
  Status read_chunked(std::string& in);

  ReaderLimits limits_;
  Phase phase_ = Phase::kHead;
  bool started_ = false;
  std::size_t scanned_ = 0;  // head bytes already searched for its end
  std::size_t remaining_ = 0;  // body or chunk bytes still to come
  std::size_t trailer_bytes_ = 0;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool expect_continue_ = false;
  Request request_;
  int error_status_ = 0;
  std::string error_message_;
};

// Percent-decodes a request path; false on a malformed escape or a NUL.
bool decode_path(const std::string& raw, std::string& out);

// The bytes of an answer: status line, headers (CR and LF removed from
// handler-supplied values; Content-Length and Connection set here), body.
std::string serialize_response(const Response& r, bool keep_alive);

// The head of a streamed answer: headers as above but no Content-Length;
// `Transfer-Encoding: chunked` when `chunked`, and `X-Accel-Buffering: no`
// unless the handler set it. Without chunking the body ends at close, so
// `keep_alive` must then be false.
std::string serialize_stream_head(const Response& r, bool keep_alive, bool chunked);

// One piece of a streamed body as it goes on the wire; "" stays "" (an
// empty chunk would end the body).
std::string frame_piece(const std::string& piece, bool chunked);

const char* reason_phrase(int status);

}  // namespace flurry::http
