// Persistent thread pool: see thread_pool.h.
//
// One job at a time. A job is published as (generation, task count, next task
// index) in one 64-bit ticket; a thread takes task i by a compare-and-swap of
// the ticket from (g, n, i) to (g, n, i + 1), i < n, and only then reads the
// job's callable, so a late worker can never run a task of a finished job
// with a newer callable (the caller publishes a new job only after every task
// of the old one has finished, i.e. after the old ticket's index reached n).
// Workers spin for up to 200 us after a job (back-to-back GEMMs are common)
// and then sleep on a futex (std::atomic::wait); the caller spins up to 500 us
// for the last task before sleeping.
#include "models/common/thread_pool.h"

#include "models/common/errors.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HDQ_PAUSE() _mm_pause()
#else
#define HDQ_PAUSE() ((void)0)
#endif

namespace hdq {

namespace {
constexpr auto kWorkerSpin = std::chrono::microseconds(200);  // worker: wait for the next job
constexpr auto kCallerSpin = std::chrono::microseconds(500);  // caller: wait for the last task

// Spins until pred() or `budget` elapsed; true when pred() held.
template <typename Pred>
bool spin_until(Pred pred, std::chrono::microseconds budget) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      HDQ_PAUSE();
    }
    if (std::chrono::steady_clock::now() - t0 > budget) return pred();
  }
}

// fn(0) .. fn(n - 1) on this thread; the first exception is rethrown after all ran.
void run_inline(int n, TaskRef fn) {
  std::exception_ptr err;
  for (int i = 0; i < n; ++i) {
    try {
      fn(i);
    } catch (...) {
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}
}  // namespace

struct ThreadPool::Impl {
  std::atomic<bool> busy{false};
  std::atomic<bool> stop{false};
  std::atomic<std::uint32_t> generation{0};  // futex word the workers sleep on
  std::atomic<std::uint64_t> ticket{0};      // generation << 32 | task count << 16 | next task index
  std::atomic<int> pending{0};               // tasks of the current job not yet finished
  TaskRef* fn = nullptr;                     // the current job's callable
  std::mutex error_mu;
  std::exception_ptr error;
  std::vector<std::thread> workers;

  // Takes and runs tasks of generation g until none is left. The ticket
  // carries the job's task count, so a thread never trusts a stale count.
  void work(std::uint32_t g) {
    std::uint64_t t = ticket.load(std::memory_order_acquire);
    for (;;) {
      const int index = int(t & 0xffffu), count = int((t >> 16) & 0xffffu);
      if (std::uint32_t(t >> 32) != g || index >= count) return;
      if (!ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      run_task(index);
      t = ticket.load(std::memory_order_acquire);
    }
  }

  void run_task(int i) {
    try {
      (*fn)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) pending.notify_all();
  }

  void worker_loop(std::uint32_t seen) {
    for (;;) {
      if (!spin_until([&] { return generation.load(std::memory_order_acquire) != seen; }, kWorkerSpin))
        generation.wait(seen, std::memory_order_acquire);
      const std::uint32_t g = generation.load(std::memory_order_acquire);
      if (stop.load(std::memory_order_acquire)) return;
      if (g == seen) continue;  // spurious wake-up
      seen = g;
      work(g);
    }
  }
};

ThreadPool::ThreadPool(int threads) : threads_(threads), impl_(nullptr) {
  require_in_range("threads", threads, 1, kMaxThreads);
  impl_ = new Impl;
}

ThreadPool::~ThreadPool() {
  impl_->stop.store(true, std::memory_order_release);
  impl_->generation.fetch_add(1, std::memory_order_acq_rel);
  impl_->generation.notify_all();
  for (auto& t : impl_->workers) t.join();
  delete impl_;
}

void ThreadPool::run(int n, TaskRef fn) {
  if (n <= 0) return;
  Impl& p = *impl_;
  // One thread, or busy (another thread's job, or a task calling run): run
  // inline, in order.
  if (n == 1 || threads_ == 1 || p.busy.exchange(true, std::memory_order_acq_rel)) {
    run_inline(n, fn);
    return;
  }
  if (n > 0xffff) {  // the ticket holds 16-bit counts: run in slices
    p.busy.store(false, std::memory_order_release);
    for (int base = 0; base < n; base += 0xffff) {
      const int len = std::min(0xffff, n - base);
      run(len, [&](int i) { fn(base + i); });
    }
    return;
  }
  try {
    while (int(p.workers.size()) < std::min(n, threads_) - 1) {
      const std::uint32_t g = p.generation.load(std::memory_order_acquire);
      p.workers.emplace_back([&p, g] { p.worker_loop(g); });
    }
  } catch (...) {
    // Could not start a thread: whatever workers exist still take tasks.
    if (p.workers.empty()) {
      p.busy.store(false, std::memory_order_release);
      run_inline(n, fn);
      return;
    }
  }
  p.error = nullptr;
  p.fn = &fn;
  p.pending.store(n, std::memory_order_relaxed);
  const std::uint32_t g = p.generation.load(std::memory_order_relaxed) + 1;
  p.ticket.store(std::uint64_t(g) << 32 | std::uint64_t(n) << 16, std::memory_order_release);
  p.generation.store(g, std::memory_order_release);
  p.generation.notify_all();
  p.work(g);
  if (!spin_until([&] { return p.pending.load(std::memory_order_acquire) == 0; }, kCallerSpin))
    for (int left = p.pending.load(std::memory_order_acquire); left != 0;
         left = p.pending.load(std::memory_order_acquire))
      p.pending.wait(left, std::memory_order_acquire);
  std::exception_ptr err = p.error;
  p.error = nullptr;
  p.fn = nullptr;
  p.busy.store(false, std::memory_order_release);
  if (err) std::rethrow_exception(err);
}

}  // namespace hdq
