// HttpSession: one client connection's HTTP/1.1 state, as pure logic. Bytes
// in; requests dispatched to the App (through detail::ExchangeHandler, so this
// core does not depend on the API); response bytes out. No sockets and no
// clock of its own: the libevent shell in connection.cpp feeds it, takes its
// output and owns the timers, through SessionHost.
//
// Parsing is Boost.Beast's request_parser. Each request becomes an Exchange in
// the session's pipeline; responses are written strictly in pipeline order, so
// a handler that answers later holds back the responses behind it and
// pipelined responses can never overtake each other. At most
// `max_pipelined_requests` exchanges are outstanding; past that, feed()
// consumes nothing more until responses go out.
//
// Requests that could be read two ways by a proxy in front (smuggling) are
// refused with 400: Beast refuses Content-Length with Transfer-Encoding,
// differing Content-Lengths, bad chunk sizes and bare LF; the session adds
// obs-fold (a header line continued on the next), any Transfer-Encoding but
// "chunked" (501 when chunked ends a list of codings herd does not know),
// Transfer-Encoding in HTTP/1.0, an HTTP/1.1 request without exactly one Host
// (HTTP/1.0: more than one), and, in a chunked body, what Beast lets through:
// a chunk line over `chunk_line_bytes`, a control character in it, a quoted
// extension that does not end on its line, data not followed by CRLF (at
// its first wrong byte) and a bare LF in the trailer section. Chunk
// extensions count against the body limit; trailer fields count against the
// header limit (431) and are then dropped, never merged into the header.
// A request line over the header limit gets 414, other headers 431, an
// HTTP version other than 1.x (HTTP/2's preface included) 505. Up to
// kMaxEmptyLines empty lines before a request are skipped (RFC 9112 2.2).
//
// After an error response (400/413/414/431/501/505), or a response that closes the
// connection (the request asked, the app set it, or the session drains and it
// was the last outstanding), the session is closing: it reads no more input,
// drops what is still outstanding, and the shell closes the connection once
// the output is written.
#pragma once

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herd/detail/exchange_handler.h"
#include "worker/exchange.h"

namespace herd {

struct HttpLimits {
  std::size_t header_bytes = 16 * 1024;  // request line + headers; over it -> 431
  std::size_t body_bytes = 1024 * 1024;  // over it -> 413
  std::size_t max_pipelined_requests = 16;
  std::size_t chunk_line_bytes = 4 * 1024;  // chunk size + extensions; over it -> 400
};

// What a session needs from the connection around it.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual std::chrono::steady_clock::time_point now() = 0;
  virtual std::string_view date() = 0;  // the current IMF-fixdate
  // Output appeared outside feed() (a handler answered later). Must not call
  // back into the session: schedule the write instead.
  virtual void output_ready() = 0;
  // A response was written: its status and the microseconds since its
  // request's first byte was read.
  virtual void response_written(unsigned status, std::uint64_t latency_us) = 0;
};

class HttpSession {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Empty lines (CRLF) skipped before a request line; one more is a 400.
  static constexpr std::size_t kMaxEmptyLines = 8;

  HttpSession(HttpLimits limits, const detail::ExchangeHandler& handler, SessionHost& host);
  ~HttpSession();  // detaches exchanges still held by the application
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  struct FeedResult {
    std::size_t consumed = 0;  // bytes of `input` used; keep the rest for the next call
    std::size_t requests = 0;  // requests read by this call, malformed ones included
  };
  // Parses as many complete requests from `input` as it holds (and the
  // pipeline limit allows) and dispatches each. `now` is when `input`'s newest
  // bytes were read.
  FeedResult feed(std::string_view input, TimePoint now);

  // Response bytes ready to write; the shell takes them (and clears them).
  std::string& output() { return output_; }

  // True once no further request will be read. The shell closes after
  // flushing the output.
  bool closing() const { return closing_; }
  // True while part of a request has been consumed or is pending: the shell
  // then runs the header/body timeout instead of the idle keep-alive timeout.
  bool in_request() const { return in_request_; }
  // Requests read whose responses have not been written yet.
  std::size_t outstanding() const { return pipeline_.size(); }
  // False while the pipeline is full: feed() would consume nothing.
  bool accepting() const { return pipeline_.size() < limits_.max_pipelined_requests; }
  std::uint64_t responses_written() const { return responses_written_; }

  // The worker drains: the response that leaves nothing outstanding closes
  // the connection.
  void drain() { draining_ = true; }

  // Called through the Response handle (app.cpp).
  void response_ready(Exchange& exchange);
  // The pipeline let go of `exchange`, or its last handle did.
  void release(Exchange& exchange);

 private:
  // Beast's request parser, telling the session of each chunk line it reads.
  class Parser : public boost::beast::http::request_parser<boost::beast::http::string_body> {
   public:
    explicit Parser(HttpSession& session) : session_(session) {}

   private:
    void on_chunk_header_impl(std::uint64_t size, boost::beast::string_view extensions,
                              boost::system::error_code& error) override {
      session_.check_chunk_header(size, extensions, error);
    }

    HttpSession& session_;
  };

  void reset_parser();
  // Whether the header bytes at the front of `window` (which follows what the
  // parser consumed) fold a line; advances the scan so no byte is read twice.
  bool scan_for_obs_fold(std::string_view window);
  // After a put() of `given`: the status to refuse the request with, or 0.
  unsigned refusal_after(boost::system::error_code& error, bool header_ended, bool capped,
                         std::string_view given) const;
  // Each chunk line Beast has read whole.
  void check_chunk_header(std::uint64_t size, std::string_view extensions,
                          boost::system::error_code& error);
  // Once the request is read: drops its trailer fields; 431 if they were too many.
  unsigned take_trailer();
  Exchange& start_exchange(TimePoint started);
  void respond_error(unsigned status, TimePoint started);
  void write_ready_responses();
  void close_pipeline();

  HttpLimits limits_;
  const detail::ExchangeHandler& handler_;
  SessionHost& host_;
  std::optional<Parser> parser_;
  std::size_t header_consumed_ = 0;  // of the current request, while in its header
  // The obs-fold scan of the current header: bytes scanned from its start,
  // the last of them, and whether the blank line ending it was reached.
  std::size_t header_scanned_ = 0;
  char last_scanned_ = '\0';
  bool header_scan_done_ = false;
  std::size_t empty_lines_ = 0;  // skipped before the current request
  // A chunked request's header as the last chunk came (and its field count),
  // put back over the trailer's fields.
  std::size_t header_fields_ = 0;
  std::optional<boost::beast::http::request_header<>> chunked_header_;
  std::size_t chunks_ = 0;           // chunks with data read in the current body
  std::uint64_t chunked_bytes_ = 0;  // their data and extensions, against the body limit
  TimePoint request_started_;        // first byte of the request being read
  std::deque<Exchange*> pipeline_;   // oldest first; owned unless held by handles
  // Written, out of the pipeline, but still held by handles; detached when the
  // session goes. Usually empty or one: the exchange being answered.
  std::vector<Exchange*> held_;
  std::unique_ptr<Exchange> spare_;  // one freed exchange, reused to save allocations
  std::string output_;
  std::uint64_t responses_written_ = 0;
  bool closing_ = false;
  bool in_request_ = false;
  bool draining_ = false;
  bool feeding_ = false;  // inside feed(): output is collected, not announced
};

// Appends an HTTP/1.x response for `exchange` to `output`: its status, its
// headers, Content-Type (unless omitted), Content-Length (not for 204 and
// 304), Date and Connection as needed; the body unless HEAD, 204 or 304.
void write_response(std::string& output, unsigned version, const Exchange& exchange,
                    bool keep_alive, std::string_view date);

// The reason phrase for a status code ("Not Found").
std::string_view reason_phrase(unsigned status);

// An IMF-fixdate for the Date header ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string http_date(std::time_t now);

// Text made safe to put in an HTML body.
std::string html_escape(std::string_view text);

}  // namespace herd
