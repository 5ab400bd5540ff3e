// Router::match over a 20-route REST table: the cost of finding the handler,
// which grows with the routes tried before the match (first match wins, no
// index), and of decoding the parameters of the one that matched.
#include "herd/router.h"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <optional>
#include <string_view>

#include "bench/micro/allocation_counter.h"

namespace herd {
namespace {

struct RouteSpec {
  std::string_view method;
  std::string_view pattern;
};

constexpr RouteSpec kRoutes[] = {
    {"GET", "/"},
    {"GET", "/health"},
    {"GET", "/users"},
    {"POST", "/users"},
    {"GET", "/users/:id"},
    {"PUT", "/users/:id"},
    {"DELETE", "/users/:id"},
    {"GET", "/users/:id/posts"},
    {"GET", "/users/:id/posts/:post"},
    {"GET", "/posts"},
    {"POST", "/posts"},
    {"GET", "/posts/:id"},
    {"PATCH", "/posts/:id"},
    {"GET", "/posts/:id/comments"},
    {"POST", "/posts/:id/comments"},
    {"GET", "/search"},
    {"GET", "/api/v1/orders/:order/items/:item"},
    {"GET", "/api/v1/stats"},
    {"POST", "/api/v1/login"},
    {"GET", "/static/*"},
};
static_assert(std::size(kRoutes) == 20);

Router route_table() {
  Router router;
  for (std::size_t i = 0; i < std::size(kRoutes); ++i) {
    router.add(kRoutes[i].method, kRoutes[i].pattern, i);
  }
  return router;
}

// Matches (method, path) per iteration; checks the handler found and the
// parameter count every time (cheap next to the match itself).
void BM_RouterMatch(benchmark::State& state, std::string_view method, std::string_view path,
                    std::optional<HandlerId> expected, std::size_t expected_params) {
  Router router = route_table();
  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  for (auto _ : state) {
    MatchResult result = router.match(method, path);
    if (result.handler != expected || result.params.size() != expected_params) {
      state.SkipWithError("the route matched is not the expected one");
      break;
    }
    benchmark::DoNotOptimize(result);
  }
  bench::report_allocations_per_item(state, allocations_before, state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_RouterMatch, first_root, "GET", "/", HandlerId{0}, 0);
BENCHMARK_CAPTURE(BM_RouterMatch, user_by_id, "GET", "/users/42", HandlerId{4}, 1);
BENCHMARK_CAPTURE(BM_RouterMatch, two_params, "GET", "/api/v1/orders/7/items/%41b", HandlerId{16},
                  2);
BENCHMARK_CAPTURE(BM_RouterMatch, wildcard_last, "GET", "/static/css/site.css", HandlerId{19}, 1);
BENCHMARK_CAPTURE(BM_RouterMatch, miss_all_20, "GET", "/nowhere/to/be/found", std::nullopt, 0);

}  // namespace
}  // namespace herd
