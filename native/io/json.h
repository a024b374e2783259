// A small strict JSON (RFC 8259) parser producing a DOM. It reads safetensors headers and
// diffusers config files, both of which may come from untrusted downloads, so every limit
// (size, nesting depth, value count) is explicit and every malformed input is an Error,
// never undefined behaviour.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fusediff::io {

class JsonValue {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<JsonValue>;
  using Member = std::pair<std::string, JsonValue>;
  using Object = std::vector<Member>;  // insertion order; keys are unique

  // A number keeps its double value and, when it was written as an integer literal (no
  // fraction, no exponent) that fits in int64, the exact integer: shapes and byte offsets
  // must not go through a double, which is exact only up to 2^53.
  struct Number {
    double value = 0.0;
    int64_t integer = 0;
    bool is_integer = false;
  };

  JsonValue() = default;  // null
  explicit JsonValue(bool b) : v_(b) {}
  explicit JsonValue(Number n) : v_(n) {}
  explicit JsonValue(std::string s) : v_(std::move(s)) {}
  explicit JsonValue(const char* s) : v_(std::string(s)) {}  // else a literal would pick bool
  explicit JsonValue(Array a) : v_(std::move(a)) {}
  explicit JsonValue(Object o) : v_(std::move(o)) {}

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::Null; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_number() const { return type() == Type::Number; }
  bool is_string() const { return type() == Type::String; }
  bool is_array() const { return type() == Type::Array; }
  bool is_object() const { return type() == Type::Object; }
  // True for a number written as an integer literal within int64 range.
  bool is_integer() const { return is_number() && std::get<Number>(v_).is_integer; }

  // Typed access. Asking for the wrong type is a bug in the caller (check the type first
  // and report a config error with context), so these throw Error(Internal).
  bool as_bool() const;
  double as_number() const;
  int64_t as_int64() const;  // requires is_integer()
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  // Member lookup on an object (linear: the objects we look into are small); nullptr when
  // the key is absent. Throws Error(Internal) when this is not an object.
  const JsonValue* find(std::string_view key) const;

 private:
  // The alternative order matches Type.
  std::variant<std::monostate, bool, Number, std::string, Array, Object> v_;
};

// "null", "boolean", "number", "string", "array", "object": for error messages.
const char* json_type_name(JsonValue::Type type);

struct JsonOptions {
  size_t max_bytes = size_t{16} << 20;   // larger input -> Error(Resource)
  int max_depth = 64;                    // nested arrays/objects; deeper -> Error(Format)
  size_t max_values = size_t{1} << 20;   // values of any kind; more -> Error(Resource)
  bool allow_nonfinite = false;          // accept Infinity, -Infinity, NaN (Python's json writes them)
};

// The deepest nesting an option may ask for: the parser recurses once per level, and
// Node's worker threads do not have large stacks.
constexpr int kJsonMaxSupportedDepth = 512;

// Parses one JSON value surrounded by optional whitespace. Malformed text throws
// Error(Format, "JSON at byte N: what"); N is the 0-based offset into `text`. Exceeding
// max_bytes or max_values throws Error(Resource); options out of range throw Error(Argument).
JsonValue parse_json(std::string_view text, const JsonOptions& options = {});

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF).
bool is_utf8(std::string_view text);

// `utf8` as a JSON string literal, quotes included; control characters are escaped.
// Throws Error(Argument) when `utf8` is not valid UTF-8 (the result would not be JSON).
std::string json_quote(std::string_view utf8);

// A name or value from an untrusted file, made safe to put in an error message: quoted and
// escaped like json_quote, bytes that are not UTF-8 written as \xNN, and cut after about
// `max_bytes` bytes with "..." so a hostile megabyte-long name cannot flood a log.
std::string quote_for_message(std::string_view text, size_t max_bytes = 80);

}  // namespace fusediff::io
