// One AsyncWorker for every off-thread call: Execute runs a plain C++ closure on a libuv
// worker thread, OnOK turns its result into JS on the main thread. The closure holds
// shared_ptrs to what it uses, so a dispose() during the call cannot free them under it.
#pragma once
#include <napi.h>

#include <exception>
#include <functional>
#include <memory>

#include "binding/errors.h"

namespace fusediff::binding {

class Task : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Finish = std::function<Napi::Value(Napi::Env)>;

  // Queues `work`; the promise resolves to finish(env) or rejects with a FusediffError.
  static Napi::Promise run(Napi::Env env, Work work, Finish finish) {
    auto* task = new Task(env, std::move(work), std::move(finish));
    Napi::Promise promise = task->deferred_.Promise();
    task->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (error_) {
      deferred_.Reject(translate(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(finish_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(translate(env, std::current_exception()).Value());
    }
  }

 private:
  Task(Napi::Env env, Work work, Finish finish)
      : Napi::AsyncWorker(env, "fusediff"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), finish_(std::move(finish)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  Finish finish_;
  std::exception_ptr error_;
};

}  // namespace fusediff::binding
