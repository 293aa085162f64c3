// A small persistent thread pool for data-parallel loops (GEMM row blocks,
// the golden model's matrix products).
//
// A pool is owned by whoever computes with it (a GemmContext, the golden
// model's context) and runs its loops on up to threads() threads: the caller
// and threads() - 1 workers, started on first use and reused by every later
// call, so a call costs a wake-up, not a thread creation; they are joined when
// the pool is destroyed. run(n, fn) calls fn(0) .. fn(n - 1), each exactly
// once, and returns when all have finished; the caller takes tasks too. Which
// thread runs which task is not fixed, so callers must make every task's
// result depend only on its index (the GEMM splits rows by index and merges
// statistics in index order: its bits do not depend on threads).
//
// A call made while another call is running (from another thread, or from
// inside a task) runs its tasks on the calling thread, in index order: the
// pool never blocks on itself. The first exception a task throws is rethrown
// to the caller after every task has finished.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace hdq {

// A non-owning reference to a callable `void(int)`.
class TaskRef {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, TaskRef>>>
  TaskRef(F&& f)  // NOLINT(google-explicit-constructor): a view, like std::function_ref
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, int i) { (*static_cast<std::remove_reference_t<F>*>(o))(i); }) {}
  void operator()(int i) const { call_(obj_, i); }

 private:
  void* obj_;
  void (*call_)(void*, int);
};

class ThreadPool {
 public:
  static constexpr int kMaxThreads = 256;

  // threads: 1 .. kMaxThreads (ConfigError otherwise); 1 runs every task on
  // the caller and never starts a worker.
  explicit ThreadPool(int threads);
  int threads() const { return threads_; }

  // fn(0) .. fn(n - 1) on up to min(n, threads()) threads (the caller and
  // workers); tasks are handed out in index order to whichever thread is free.
  void run(int n, TaskRef fn);

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

 private:
  struct Impl;
  int threads_;
  Impl* impl_;
};

}  // namespace hdq
