#include "binding/errors.h"

#include <new>

#include "binding/addon_data.h"

namespace fusediff::binding {

void set_error_class(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  addon_data(info.Env()).error_class = Napi::Persistent(info[0].As<Napi::Function>());
}

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::FunctionReference& error_class = addon_data(env).error_class;
  if (!error_class.IsEmpty()) {
    Napi::Object obj = error_class.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, obj);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

Napi::Error make_error(Napi::Env env, const Error& e) { return make_error(env, error_code_name(e.code()), e.what()); }

Napi::Error translate(Napi::Env env, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return make_error(env, e);
  } catch (const std::bad_alloc&) {
    return make_error(env, "E_RESOURCE", "out of memory");
  } catch (const std::exception& e) {
    return make_error(env, "E_INTERNAL", std::string("internal error: ") + e.what() + " (please report this)");
  } catch (...) {
    return make_error(env, "E_INTERNAL", "unknown internal error (please report this)");
  }
}

}  // namespace fusediff::binding
