// Turns engine errors into JS FusediffError objects. lib/native.ts hands the FusediffError
// class to the addon once at load (setErrorClass), so errors thrown or rejected by the
// addon are real instances of the class users catch.
#pragma once
#include <napi.h>

#include <string>

#include "core/error.h"

namespace fusediff::binding {

void set_error_class(const Napi::CallbackInfo& info);
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);
Napi::Error make_error(Napi::Env env, const Error& e);
// Any exception from the engine as a JS error: fusediff::Error keeps its code, std::bad_alloc
// becomes E_RESOURCE, anything else E_INTERNAL.
Napi::Error translate(Napi::Env env, std::exception_ptr error);

// Runs fn, converting engine exceptions into a thrown JS error.
template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw translate(env, std::current_exception());
  }
}

}  // namespace fusediff::binding
