#pragma once
// One HTTP server wrapper and one HTTP client port, shared by all services.
// cpprestsdk stays inside http/src: these headers are cheap to include.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "flurry/core/error.hpp"

namespace flurry::http {

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // decoded path, no query
  std::string query;                           // raw query string
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // raw bytes
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// What a streaming response sends after its head (e.g. server-sent
// events), pulled by the server.
class Stream {
 public:
  virtual ~Stream() = default;
  // Bytes to send now ("" when there is nothing new), or nullopt once the
  // stream has ended (the response then ends). Called on the server's
  // stream thread, never concurrently for one stream; must not block long,
  // as every stream of the server waits for it. Not called while the client
  // is behind (more than 64 KiB unsent): a Stream that queues events of its
  // own should bound that queue. A piece that leaves more than 1 MiB unsent
  // closes the connection, so hand out a large backlog in pieces. An
  // exception cuts the response off (no clean end) and is logged.
  virtual std::optional<std::string> next() = 0;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::map<std::string, std::string> headers;
  // Server only. When set, the answer is this stream: the head goes out
  // at once (without Content-Length; chunked to HTTP/1.1 clients, and with
  // `X-Accel-Buffering: no` so nginx passes events on), then `body` if not
  // empty, then what next() returns, called right away and then every
  // `stream_interval` (at least 10 ms). An HTTP/1.0 client's body ends when
  // the connection closes. A text/event-stream response gets a
  // ": keep-alive" comment after ServerOptions::stream_keepalive without
  // bytes. The Stream is released (on the stream thread) as soon as it has
  // ended or the client has gone (EOF, reset, write error).
  std::shared_ptr<Stream> stream;
  std::chrono::milliseconds stream_interval{1000};
  std::string header(const std::string& lower_name) const;  // case-insensitive
};

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 0;                              // must be set
  std::size_t max_body = 25 * 1024 * 1024;   // larger bodies get 413
  // A request must arrive whole within this of its first byte (else 408
  // and the connection is closed); an idle connection, and an answer the
  // client does not read, are dropped after it too.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  std::size_t max_connections = 1024;        // beyond: accepted and closed
  // Request bytes all connections may hold at once; the request that
  // passes it gets 503 and its connection closed.
  std::size_t max_buffered = 256 * 1024 * 1024;
  int workers = 4;                           // threads running handlers
  // Streaming responses open at once (each also holds a connection); a
  // handler's stream beyond it is answered 503 instead. Streams wait on a
  // thread of their own, not on the workers.
  std::size_t max_streams = 1000;
  // A text/event-stream without bytes this long gets a comment line, so
  // proxies and clients see the connection alive.
  std::chrono::milliseconds stream_keepalive{std::chrono::seconds(15)};
};

// HTTP/1.1 with keep-alive, chunked request bodies and 100-continue.
// Malformed requests get a 4xx (400, 413, 414, 431, 501, 505) and the
// connection closed; handlers see only whole, well-formed requests.
// Streaming responses (Response::stream) are exempt from `timeout` while
// they stream, except that a client which takes no bytes for `timeout`
// while some wait is dropped. stop() ends every stream (its final chunk
// written if the socket takes it) and does not wait for clients.
class Server {
 public:
  virtual ~Server() = default;
  // Routes match method and exact path; a path ending in '*' matches by
  // prefix. Add routes before start(). Unmatched paths get 404, handler
  // exceptions 500 (and a log line). Handlers run on `workers` threads.
  virtual void route(const std::string& method, const std::string& path, Handler handler) = 0;
  // Like route, but served by a thread of its own, so that health checks
  // and metrics are answered while every worker waits on a slow handler.
  virtual void route_health(const std::string& method, const std::string& path, Handler handler) = 0;
  // Throws std::runtime_error if the address cannot be bound.
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual std::string url() const = 0;  // "http://127.0.0.1:port"
  // Streaming responses open now (handed out by handlers, not yet released).
  virtual std::size_t streams() const = 0;
};

std::unique_ptr<Server> make_server(const ServerOptions& options);

// Sets the thread pool size of the HTTP client machinery; call once from
// main before any client is made (cpprest's default of 40 threads is four
// times slower on two cores).
void init_threads(int n);

struct ClientRequest {
  std::string method = "GET";
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
};

class Client {
 public:
  virtual ~Client() = default;
  // Any HTTP answer is a value, a redirect too (never followed: it would
  // carry the request's credentials elsewhere); an error means no answer
  // (connection refused, timeout): transient.
  virtual Result<Response> send(const ClientRequest& req) = 0;
};

std::unique_ptr<Client> make_client();

}  // namespace flurry::http
