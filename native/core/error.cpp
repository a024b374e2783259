#include "core/error.h"

namespace fusediff {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::Format: return "E_FORMAT";
    case ErrorCode::Config: return "E_CONFIG";
    case ErrorCode::Unsupported: return "E_UNSUPPORTED";
    case ErrorCode::Shape: return "E_SHAPE";
    case ErrorCode::Io: return "E_IO";
    case ErrorCode::Resource: return "E_RESOURCE";
    case ErrorCode::Argument: return "E_ARGUMENT";
    case ErrorCode::Disposed: return "E_DISPOSED";
    case ErrorCode::BackendUnavailable: return "E_BACKEND_UNAVAILABLE";
    case ErrorCode::Unsafe: return "E_UNSAFE";
    case ErrorCode::Internal: return "E_INTERNAL";
  }
  return "E_INTERNAL";
}

}  // namespace fusediff
