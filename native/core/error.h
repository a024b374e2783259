// Error type of the engine. Every failure that can be caused by input from outside
// (files, configs, shapes, options) is thrown as fusediff::Error with a stable code;
// the binding layer turns it into a JS FusediffError with the same code.
#pragma once
#include <stdexcept>
#include <string>

namespace fusediff {

// Stable codes; the JS side documents them. Keep in sync with lib/errors.ts.
enum class ErrorCode {
  Format,       // E_FORMAT: malformed file contents (safetensors, JSON, pickle)
  Config,       // E_CONFIG: a config value of the wrong type or out of range
  Unsupported,  // E_UNSUPPORTED: a valid config/dtype we do not implement
  Shape,        // E_SHAPE: a tensor shape that does not fit
  Io,           // E_IO: the file system said no
  Resource,     // E_RESOURCE: a request larger than the configured limits
  Argument,     // E_ARGUMENT: a bad argument to an API call
  Disposed,     // E_DISPOSED: use of a released object
  BackendUnavailable,  // E_BACKEND_UNAVAILABLE: a device backend that is not there (library, driver, device)
  Unsafe,       // E_UNSAFE: a file that asks for code to run or a path to be followed out of its folder
  Internal,     // E_INTERNAL: a bug in fusediff; the message asks to report it
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace fusediff
