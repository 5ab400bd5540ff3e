#include "bench/micro/allocation_counter.h"

#include <cstdlib>
#include <new>

namespace herd::bench {
namespace {

// Constant-initialized, so it is usable from operator new before main().
thread_local std::uint64_t allocation_count = 0;

}  // namespace

std::uint64_t allocations_on_this_thread() {
  return allocation_count;
}

}  // namespace herd::bench

// libstdc++ routes new[], the nothrow forms and the sized deletes through
// these two, so replacing them keeps every new/delete pair on malloc/free.
void* operator new(std::size_t size) {
  ++herd::bench::allocation_count;
  if (size == 0) size = 1;
  for (;;) {
    if (void* memory = std::malloc(size)) return memory;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void operator delete(void* memory) noexcept {
  std::free(memory);
}

void operator delete(void* memory, std::size_t) noexcept {
  std::free(memory);
}
