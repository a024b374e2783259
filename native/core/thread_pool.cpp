#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace fusediff {

namespace {

void chunk(int64_t n, int parts, int index, int64_t* begin, int64_t* end) {
  *begin = n * index / parts;
  *end = n * (index + 1) / parts;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until done() or kSpinMicroseconds have passed; returns done().
template <typename Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicroseconds);
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return done();
  }
}

// Physical cores among the CPUs this process may run on (SMT siblings count once).
int physical_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return static_cast<int>(std::thread::hardware_concurrency());
  std::set<std::pair<std::string, std::string>> cores;
  int allowed = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    ++allowed;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(dir + "physical_package_id"), core(dir + "core_id");
    std::string p, c;
    if (!(package >> p) || !(core >> c)) return allowed > 0 ? CPU_COUNT(&set) : 1;  // no topology: count CPUs
    cores.insert({p, c});
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

}  // namespace

namespace {
uint32_t generation_of(uint64_t claim) { return static_cast<uint32_t>(claim >> 32); }
uint64_t claim_word(uint32_t generation, int chunks, int next) {
  return (static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(chunks) << 16) | static_cast<uint64_t>(next);
}
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads < 1) num_threads = 1;
  // Chunk counts must fit the claim word's 16 bits.
  if (num_threads > 65535 / kChunksPerThread) num_threads = 65535 / kChunksPerThread;
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(uint32_t generation) {
  uint64_t word = claim_.load(std::memory_order_acquire);
  for (;;) {
    const int chunks = static_cast<int>((word >> 16) & 0xffff), next = static_cast<int>(word & 0xffff);
    if (generation_of(word) != generation || next >= chunks) return;
    // A successful claim also makes fn_ and n_ of this region visible (they were written
    // before the region's word was released), and the region cannot end before this chunk does.
    if (!claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    int64_t begin, end;
    chunk(n_, chunks, next, &begin, &end);
    try {
      (*fn_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    if (chunks_done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
    word = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;  // generation 0 is the pool's state at construction: no region
  for (;;) {
    auto started = [&] { return stop_.load() || generation_of(claim_.load(std::memory_order_acquire)) != seen; };
    if (!spin_until(started)) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, started);
    }
    if (stop_) return;
    seen = generation_of(claim_.load(std::memory_order_acquire));
    run_chunks(seen);
  }
}

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> region(region_mutex_);
  const int chunks = static_cast<int>(std::min<int64_t>(n, static_cast<int64_t>(num_threads()) * kChunksPerThread));
  uint32_t generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    n_ = n;
    error_ = nullptr;
    chunks_done_.store(0, std::memory_order_relaxed);
    generation = generation_of(claim_.load(std::memory_order_relaxed)) + 1;
    if (generation == 0) generation = 1;  // 0 means "no region" to a new worker
    claim_.store(claim_word(generation, chunks, 0), std::memory_order_release);
  }
  wake_.notify_all();
  run_chunks(generation);
  auto finished = [&] { return chunks_done_.load(std::memory_order_acquire) == chunks; };
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, finished);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  fn_ = nullptr;
  std::exception_ptr err = error_;
  error_ = nullptr;
  if (err) std::rethrow_exception(err);
}

int ThreadPool::default_threads() {
  if (const char* env = std::getenv("FUSEDIFF_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 1024) return n;
  }
  return physical_cores();
}

namespace {
std::mutex g_pool_mutex;
std::shared_ptr<ThreadPool> g_pool;
}  // namespace

std::shared_ptr<ThreadPool> ThreadPool::global() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_shared<ThreadPool>(default_threads());
  return g_pool;
}

void ThreadPool::set_global_threads(int num_threads) {
  auto pool = std::make_shared<ThreadPool>(num_threads > 0 ? num_threads : default_threads());
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  g_pool = std::move(pool);
}

}  // namespace fusediff
