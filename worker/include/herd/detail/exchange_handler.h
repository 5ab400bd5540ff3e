// What an HTTP session hands each parsed request to: the App, seen by the
// runtime through this one call, so the HTTP core (worker/http_session)
// depends on no part of the application API. Not for applications to use.
#pragma once

namespace herd {

struct Exchange;

namespace detail {

class ExchangeHandler {
 public:
  // Runs whatever answers `exchange`; the response may come later.
  virtual void dispatch(Exchange& exchange) const = 0;

 protected:
  ~ExchangeHandler() = default;
};

}  // namespace detail
}  // namespace herd
