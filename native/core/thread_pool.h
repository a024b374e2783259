// A persistent pool of worker threads for data-parallel kernels.
//
// Between the parallel regions of one forward pass (a few hundred, microseconds apart) the
// workers spin briefly so that the next region starts without a futex round trip; after
// kSpinMicroseconds without work they sleep on a condition variable, so an idle pool costs
// nothing to the Node process hosting it. Regions from concurrent callers (several forwards
// on libuv's workers) are serialised: each is short, and running two at once would only
// oversubscribe the cores.
//
// A region is cut into a fixed list of chunks (kChunksPerThread per thread) that the caller
// and the workers claim one at a time. Nobody waits for a thread that has not started: on a
// machine whose cores are busy with other processes a worker may wake milliseconds late, and
// the caller then simply runs the chunks itself. Chunk boundaries depend only on the range
// and the thread count, never on timing, so results are reproducible.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace fusediff {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t begin, int64_t end)>;
  static constexpr int kSpinMicroseconds = 100;
  static constexpr int kChunksPerThread = 4;

  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Splits [0, n) into contiguous chunks and runs fn on each, on whichever thread claims it;
  // returns when all are done. Exceptions thrown by fn are rethrown here (the first one).
  void parallel_for(int64_t n, const RangeFn& fn);

  // The process-wide pool, sized from FUSEDIFF_NUM_THREADS or the physical cores this
  // process may use. Callers hold the shared_ptr for the duration of their work, so
  // set_global_threads is safe at any time: running work finishes on the old pool.
  static std::shared_ptr<ThreadPool> global();
  static void set_global_threads(int num_threads);  // 0: the default
  static int default_threads();

 private:
  void worker_loop();
  // Claims and runs chunks of region `generation` until none are left.
  void run_chunks(uint32_t generation);

  std::vector<std::thread> workers_;
  std::mutex region_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  // The current region and its next unclaimed chunk, in one word so that a claim is one
  // compare-and-swap: bits 63-32 the region's generation, 31-16 its chunk count, 15-0 the
  // next chunk.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> chunks_done_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

}  // namespace fusediff
