// A persistent pool of worker threads for data-parallel kernels.
//
// Workers sleep on a condition variable between parallel regions, so an idle pool costs
// nothing to the Node process that hosts it. The calling thread takes a share of the work
// itself. Regions from concurrent callers (several forwards running on libuv's workers)
// are serialised: each region is short, and running two at once would only oversubscribe
// the cores.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fusediff {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t begin, int64_t end)>;

  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Splits [0, n) into num_threads() contiguous chunks (a static split: the result of a
  // kernel never depends on timing) and runs fn on each; returns when all are done.
  // Exceptions thrown by fn are rethrown here (the first one).
  void parallel_for(int64_t n, const RangeFn& fn);

  // The process-wide pool, sized from FUSEDIFF_NUM_THREADS or the number of cores.
  static ThreadPool& global();
  // Replaces the global pool's size (0 = default). Not safe while a forward is running.
  static void set_global_threads(int num_threads);
  static int default_threads();

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex region_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace fusediff
