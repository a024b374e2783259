// The thread pool: every index runs exactly once, regions start right after construction,
// chunks are fixed, a stalled worker does not hold the caller up, exceptions reach the
// caller, concurrent callers are serialised, and pools come and go.
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <utility>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "tests/check.h"

using fusediff::ThreadPool;

TEST_CASE("thread pool: each index once, across many short regions") {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);  // the first region starts before the workers have run
    for (int region = 0; region < 2000; ++region) {
      const int64_t n = 1 + region % 37;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) CHECK_EQ(h.load(), 1);
    }
  }
}

TEST_CASE("thread pool: chunk boundaries depend only on the range and the thread count") {
  ThreadPool pool(2);
  std::set<std::pair<int64_t, int64_t>> first;
  for (int region = 0; region < 200; ++region) {
    std::mutex m;
    std::set<std::pair<int64_t, int64_t>> ranges;
    pool.parallel_for(1000, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(m);
      ranges.insert({b, e});
    });
    CHECK_EQ(ranges.size(), size_t{2 * ThreadPool::kChunksPerThread});
    if (region == 0) first = ranges;
    CHECK(ranges == first);
  }
}

TEST_CASE("thread pool: the caller runs the chunks a stalled worker has not claimed") {
  // A worker's first chunk blocks until the caller has run every other chunk. If the caller
  // waited for the worker (a static split), this would never finish; the timeout turns
  // that into a failure instead of a hang.
  ThreadPool pool(2);
  const int chunks = 2 * ThreadPool::kChunksPerThread;
  for (int region = 0; region < 50; ++region) {
    const std::thread::id caller = std::this_thread::get_id();
    std::atomic<int> by_caller{0};
    std::atomic<bool> timed_out{false};
    pool.parallel_for(chunks, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() == caller) {
        by_caller += static_cast<int>(e - b);
        return;
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (by_caller.load() < chunks - 1)
        if (std::chrono::steady_clock::now() > deadline) {
          timed_out = true;
          return;
        }
    });
    CHECK(!timed_out.load());
    CHECK(by_caller.load() >= chunks - 1);
  }
}

TEST_CASE("thread pool: an exception in any chunk reaches the caller, and the pool keeps working") {
  ThreadPool pool(3);
  bool thrown = false;
  try {
    pool.parallel_for(9, [](int64_t b, int64_t) {
      if (b >= 6) throw std::runtime_error("chunk failed");
    });
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  CHECK(thrown);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  CHECK_EQ(sum.load(), int64_t{4950});
}

TEST_CASE("thread pool: concurrent callers and pool replacement") {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int r = 0; r < 300; ++r)
        pool.parallel_for(10, [&](int64_t b, int64_t e) { total += e - b; });
    });
  for (auto& t : callers) t.join();
  CHECK_EQ(total.load(), int64_t{4 * 300 * 10});
  for (int i = 0; i < 20; ++i) {
    auto held = ThreadPool::global();
    ThreadPool::set_global_threads(1 + i % 3);
    std::atomic<int> ran{0};
    held->parallel_for(8, [&](int64_t b, int64_t e) { ran += static_cast<int>(e - b); });
    CHECK_EQ(ran.load(), 8);
  }
  ThreadPool::set_global_threads(0);
}
