#include "request_reader.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string_view>

namespace flurry::http {
namespace {

constexpr std::size_t kMaxTarget = 8 * 1024;
constexpr std::size_t kMaxMethod = 32;
constexpr std::size_t kMaxChunkLine = 1024;

bool is_tchar(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value lists `token` (case-insensitive).
bool lists_token(const std::string& value, std::string_view token) {
  std::string_view rest = value;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto item = trim_ows(rest.substr(0, comma));
    if (lower(item) == token) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool decode_path(const std::string& raw, std::string& out) {
  out.clear();
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return false;
      int hi = hex_value(raw[i + 1]);
      int lo = hex_value(raw[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    out.push_back(c);
  }
  return true;
}

void RequestReader::reset() {
  phase_ = Phase::kHead;
  started_ = false;
  scanned_ = 0;
  remaining_ = 0;
  trailer_bytes_ = 0;
  keep_alive_ = true;
  http10_ = false;
  expect_continue_ = false;
  request_ = Request{};
  error_status_ = 0;
  error_message_.clear();
}

bool RequestReader::take_continue() {
  if (!expect_continue_) return false;
  expect_continue_ = false;
  return true;
}

RequestReader::Status RequestReader::fail(int status, std::string message) {
  phase_ = Phase::kFailed;
  error_status_ = status;
  error_message_ = std::move(message);
  keep_alive_ = false;
  return Status::kFailed;
}

RequestReader::Status RequestReader::consume(std::string& in) {
  if (phase_ == Phase::kFailed) return Status::kFailed;
  if (phase_ == Phase::kDone) return Status::kComplete;
  if (phase_ == Phase::kHead) {
    // Blank lines before a request line are ignored (RFC 9112 2.2).
    if (scanned_ == 0) {
      std::size_t skip = 0;
      while (skip < in.size() && (in[skip] == '\r' || in[skip] == '\n')) ++skip;
      in.erase(0, skip);
    }
    if (in.empty()) return Status::kNeedMore;
    started_ = true;
    auto from = scanned_ > 3 ? scanned_ - 3 : 0;
    auto end = in.find("\r\n\r\n", from);
    if (end == std::string::npos) {
      scanned_ = in.size();
      // The same answer however the bytes were split: 431 for any head
      // over the limit (414 is for a target over kMaxTarget in a head that
      // fits).
      if (in.size() > limits_.max_head) return fail(431, "request head too large");
      return Status::kNeedMore;
    }
    if (end + 4 > limits_.max_head) return fail(431, "request head too large");
    std::string head = in.substr(0, end + 2);  // each line ends in CRLF
    in.erase(0, end + 4);
    auto s = parse_head(head);
    if (s == Status::kFailed) return s;
  }
  if (phase_ == Phase::kFixedBody) {
    auto n = std::min(remaining_, in.size());
    request_.body.append(in, 0, n);
    in.erase(0, n);
    remaining_ -= n;
    if (remaining_ > 0) return Status::kNeedMore;
    phase_ = Phase::kDone;
    expect_continue_ = false;
    return Status::kComplete;
  }
  if (phase_ != Phase::kDone) return read_chunked(in);
  expect_continue_ = false;
  return Status::kComplete;
}

RequestReader::Status RequestReader::parse_head(const std::string& head) {
  std::string_view rest = head;
  auto eol = rest.find("\r\n");
  std::string_view line = rest.substr(0, eol);
  rest.remove_prefix(eol + 2);

  // request-line = method SP request-target SP HTTP-version
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  auto method = line.substr(0, sp1);
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  if (!is_token(method) || method.size() > kMaxMethod) return fail(400, "malformed method");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (version.substr(0, 5) == "HTTP/") return fail(505, "HTTP version not supported");
    return fail(400, "malformed request line");
  }
  if (target.empty()) return fail(400, "empty request target");
  if (target.size() > kMaxTarget) return fail(414, "request target too long");
  for (unsigned char c : target) {
    if (c <= 0x20 || c == 0x7f) return fail(400, "control character in request target");
  }
  const bool http10 = version == "HTTP/1.0";
  http10_ = http10;

  std::string_view path_and_query = target;
  if (target.front() != '/') {
    // absolute-form (proxies send it; servers must accept it): drop the
    // scheme and authority. authority-form and asterisk-form have no path
    // any route could match.
    auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return fail(400, "unsupported request target form");
    auto slash = target.find('/', scheme_end + 3);
    path_and_query = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  auto hash = path_and_query.find('#');
  if (hash != std::string_view::npos) path_and_query = path_and_query.substr(0, hash);
  auto q = path_and_query.find('?');
  std::string raw_path(path_and_query.substr(0, q));
  if (q != std::string_view::npos) request_.query = std::string(path_and_query.substr(q + 1));
  if (!decode_path(raw_path, request_.path)) return fail(400, "malformed percent-encoding in path");
  request_.method = std::string(method);

  std::size_t fields = 0;
  std::string content_length;
  bool has_length = false;
  while (!rest.empty()) {
    eol = rest.find("\r\n");
    line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    if (line.empty()) continue;
    if (++fields > limits_.max_headers) return fail(431, "too many header fields");
    if (line.front() == ' ' || line.front() == '\t') return fail(400, "obsolete line folding");
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return fail(400, "malformed header field");
    auto name = line.substr(0, colon);
    if (!is_token(name)) return fail(400, "malformed header name");
    auto value = trim_ows(line.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(400, "control character in header value");
    }
    auto key = lower(name);
    if (key == "content-length") {
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return fail(400, "malformed Content-Length");
      }
      if (has_length && content_length != value) return fail(400, "conflicting Content-Length");
      has_length = true;
      content_length = std::string(value);
      request_.headers[key] = content_length;
      continue;
    }
    auto [it, inserted] = request_.headers.emplace(key, std::string(value));
    if (!inserted) it->second += ", " + std::string(value);
  }

  const std::string connection = request_.header("connection");
  keep_alive_ = http10 ? lists_token(connection, "keep-alive") : !lists_token(connection, "close");

  auto te = request_.headers.find("transfer-encoding");
  if (te != request_.headers.end()) {
    if (has_length) return fail(400, "both Content-Length and Transfer-Encoding");
    if (http10) return fail(400, "Transfer-Encoding in HTTP/1.0");
    if (lower(trim_ows(te->second)) != "chunked") return fail(501, "only chunked transfer coding is supported");
    phase_ = Phase::kChunkSize;
  } else if (has_length) {
    remaining_ = static_cast<std::size_t>(std::stoull(content_length));
    if (remaining_ > limits_.max_body) return fail(413, "request body too large");
    phase_ = remaining_ > 0 ? Phase::kFixedBody : Phase::kDone;
  } else {
    phase_ = Phase::kDone;
  }
  if (phase_ != Phase::kDone) {
    expect_continue_ = !http10 && lower(request_.header("expect")) == "100-continue";
    if (phase_ == Phase::kFixedBody) request_.body.reserve(remaining_);
  }
  return Status::kNeedMore;
}

RequestReader::Status RequestReader::read_chunked(std::string& in) {
  while (true) {
    switch (phase_) {
      case Phase::kChunkSize: {
        auto eol = in.find("\r\n");
        if (eol == std::string::npos) {
          if (in.size() > kMaxChunkLine) return fail(400, "malformed chunk size");
          return Status::kNeedMore;
        }
        if (eol > kMaxChunkLine) return fail(400, "malformed chunk size");
        std::string_view line(in.data(), eol);
        auto semi = line.find(';');  // chunk extensions are ignored
        auto digits = trim_ows(line.substr(0, semi));
        if (digits.empty() || digits.size() > 15) return fail(400, "malformed chunk size");
        std::size_t size = 0;
        for (char c : digits) {
          int v = hex_value(c);
          if (v < 0) return fail(400, "malformed chunk size");
          size = size * 16 + static_cast<std::size_t>(v);
        }
        in.erase(0, eol + 2);
        if (size == 0) {
          phase_ = Phase::kTrailers;
          break;
        }
        if (request_.body.size() + size > limits_.max_body) return fail(413, "request body too large");
        remaining_ = size;
        phase_ = Phase::kChunkData;
        break;
      }
      case Phase::kChunkData: {
        auto n = std::min(remaining_, in.size());
        request_.body.append(in, 0, n);
        in.erase(0, n);
        remaining_ -= n;
        if (remaining_ > 0) return Status::kNeedMore;
        phase_ = Phase::kChunkDataEnd;
        break;
      }
      case Phase::kChunkDataEnd: {
        if (in.size() < 2) return Status::kNeedMore;
        if (in[0] != '\r' || in[1] != '\n') return fail(400, "malformed chunk");
        in.erase(0, 2);
        phase_ = Phase::kChunkSize;
        break;
      }
      case Phase::kTrailers: {
        // Trailer fields are read and dropped: nothing here trusts them.
        auto eol = in.find("\r\n");
        if (eol == std::string::npos) {
          if (trailer_bytes_ + in.size() > limits_.max_head) return fail(431, "trailers too large");
          return Status::kNeedMore;
        }
        trailer_bytes_ += eol + 2;
        if (trailer_bytes_ > limits_.max_head) return fail(431, "trailers too large");
        bool last = eol == 0;
        in.erase(0, eol + 2);
        if (last) {
          phase_ = Phase::kDone;
          expect_continue_ = false;
          return Status::kComplete;
        }
        break;
      }
      default:
        return Status::kComplete;
    }
  }
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

namespace {

// Status line and the handler's headers, without the framing ones the
// server owns (Content-Length, Connection, Transfer-Encoding).
// `has_accel_buffering` tells whether the handler set X-Accel-Buffering.
std::string serialize_head_fields(const Response& r, bool* has_accel_buffering = nullptr) {
  int status = r.status >= 100 && r.status <= 999 ? r.status : 500;
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  auto clean = [](const std::string& v) {
    std::string s;
    s.reserve(v.size());
    for (char c : v) {
      if (c != '\r' && c != '\n' && c != '\0') s.push_back(c);
    }
    return s;
  };
  bool has_type = false;
  for (const auto& [name, value] : r.headers) {
    if (!is_token(name)) continue;
    auto key = lower(name);
    if (key == "content-length" || key == "connection" || key == "transfer-encoding") continue;
    if (key == "content-type") has_type = true;
    if (key == "x-accel-buffering" && has_accel_buffering) *has_accel_buffering = true;
    out += name + ": " + clean(value) + "\r\n";
  }
  if (!has_type && !r.content_type.empty()) out += "Content-Type: " + clean(r.content_type) + "\r\n";
  return out;
}

}  // namespace

std::string serialize_response(const Response& r, bool keep_alive) {
  std::string out = serialize_head_fields(r);
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

std::string serialize_stream_head(const Response& r, bool keep_alive, bool chunked) {
  bool has_accel_buffering = false;
  std::string out = serialize_head_fields(r, &has_accel_buffering);
  if (chunked) out += "Transfer-Encoding: chunked\r\n";
  // nginx buffers proxied answers by default, which would hold events back.
  if (!has_accel_buffering) out += "X-Accel-Buffering: no\r\n";
  out += keep_alive && chunked ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return out;
}

std::string frame_piece(const std::string& piece, bool chunked) {
  if (!chunked || piece.empty()) return piece;
  char size[24];
  std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
  return size + piece + "\r\n";
}

}  // namespace flurry::http
