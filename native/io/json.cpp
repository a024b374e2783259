#include "io/json.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <numeric>

#include "core/error.h"

#if !defined(__cpp_lib_to_chars)
#include <locale>
#include <sstream>
#endif

namespace fusediff::io {
namespace {

// Length of the well-formed UTF-8 sequence that starts at s[i], or 0 when there is none.
// Follows Unicode's table of well-formed byte sequences: no overlong forms, no encoded
// surrogates, nothing above U+10FFFF.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  // Past the end reads as 0x100, which is inside no range below.
  auto byte = [&](size_t k) -> unsigned { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0x100u; };
  auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
  const unsigned b0 = byte(i);
  if (b0 < 0x80) return 1;
  if (in(b0, 0xC2, 0xDF)) return in(byte(i + 1), 0x80, 0xBF) ? 2 : 0;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  size_t length;
  if (b0 == 0xE0) {
    lo = 0xA0, length = 3;
  } else if (in(b0, 0xE1, 0xEC) || in(b0, 0xEE, 0xEF)) {
    length = 3;
  } else if (b0 == 0xED) {
    hi = 0x9F, length = 3;  // ED A0..BF would encode a surrogate
  } else if (b0 == 0xF0) {
    lo = 0x90, length = 4;
  } else if (in(b0, 0xF1, 0xF3)) {
    length = 4;
  } else if (b0 == 0xF4) {
    hi = 0x8F, length = 4;  // beyond would exceed U+10FFFF
  } else {
    return 0;
  }
  if (!in(byte(i + 1), lo, hi)) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (!in(byte(i + k), 0x80, 0xBF)) return 0;
  }
  return length;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

const char kHexDigits[] = "0123456789abcdef";

std::string hex_byte(unsigned char b) {
  return std::string("0x") + kHexDigits[b >> 4] + kHexDigits[b & 15];
}

// Shared by json_quote (strict: invalid UTF-8 is an error) and quote_for_message (lenient,
// truncating). Returns false when strict and the input is not UTF-8; `bad_at` says where.
bool quote_into(std::string& out, std::string_view text, bool strict, size_t max_bytes, size_t* bad_at) {
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    if (i >= max_bytes) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t n = utf8_sequence_length(text, i);
      if (n == 0) {
        if (strict) {
          *bad_at = i;
          return false;
        }
        out += "\\x";
        out.push_back(kHexDigits[c >> 4]);
        out.push_back(kHexDigits[c & 15]);
        ++i;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHexDigits[c >> 4]);
          out.push_back(kHexDigits[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
  return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Exact int64 value of an integer literal ("-"? digits), or false when out of range.
bool parse_int64(std::string_view lexeme, int64_t& out) {
  const bool negative = !lexeme.empty() && lexeme[0] == '-';
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  uint64_t magnitude = 0;
  for (size_t i = negative ? 1 : 0; i < lexeme.size(); ++i) {
    const uint64_t digit = static_cast<uint64_t>(lexeme[i] - '0');
    if (magnitude > (limit - digit) / 10) return false;
    magnitude = magnitude * 10 + digit;
  }
  if (!negative) {
    out = static_cast<int64_t>(magnitude);
  } else if (magnitude == uint64_t{1} << 63) {
    out = std::numeric_limits<int64_t>::min();
  } else {
    out = -static_cast<int64_t>(magnitude);
  }
  return true;
}

// Correctly rounded, locale-independent decimal -> double (strtod would follow the
// process locale, which Node leaves to the user). False when out of the double range.
bool decimal_to_double(std::string_view lexeme, double& out) {
#if defined(__cpp_lib_to_chars)
  const char* end = lexeme.data() + lexeme.size();
  const auto result = std::from_chars(lexeme.data(), end, out);
  return result.ec == std::errc() && result.ptr == end;
#else
  // Standard libraries without floating-point from_chars (older libc++).
  std::istringstream in{std::string(lexeme)};
  in.imbue(std::locale::classic());
  in >> out;
  return !in.fail() && in.peek() == std::char_traits<char>::eof();
#endif
}

class Parser {
 public:
  Parser(std::string_view text, const JsonOptions& options) : text_(text), options_(options) {}

  JsonValue parse_document() {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") error("a byte order mark is not allowed in JSON");
    skip_whitespace();
    JsonValue value = parse_value(0);
    skip_whitespace();
    if (!at_end()) error("unexpected " + describe_here() + " after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void error_at(size_t at, const std::string& what) const {
    fail(ErrorCode::Format, "JSON at byte " + std::to_string(at) + ": " + what);
  }
  [[noreturn]] void error(const std::string& what) const { error_at(pos_, what); }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }  // only when !at_end()
  bool next_is(char c) const { return !at_end() && peek() == c; }
  bool starts_with(std::string_view word) const { return text_.substr(pos_, word.size()) == word; }

  std::string describe_here() const {
    if (at_end()) return "end of input";
    const unsigned char c = static_cast<unsigned char>(peek());
    if (c > 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    return "byte " + hex_byte(c);
  }

  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  JsonValue parse_value(int depth) {
    if (at_end()) error("unexpected end of input, expected a value");
    if (++values_ > options_.max_values) {
      fail(ErrorCode::Resource, "JSON at byte " + std::to_string(pos_) + ": more than " +
                                    std::to_string(options_.max_values) + " values");
    }
    switch (peek()) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return JsonValue(parse_string());
      case 't': expect_literal("true"); return JsonValue(true);
      case 'f': expect_literal("false"); return JsonValue(false);
      case 'n': expect_literal("null"); return JsonValue();
      default: return JsonValue(parse_number());
    }
  }

  void expect_literal(std::string_view word) {
    if (!starts_with(word)) error("invalid literal, expected '" + std::string(word) + "'");
    pos_ += word.size();
  }

  void check_depth(int depth) const {
    if (depth > options_.max_depth) {
      error("nesting deeper than " + std::to_string(options_.max_depth) + " levels");
    }
  }

  JsonValue parse_array(int depth) {
    check_depth(depth);
    ++pos_;  // '['
    JsonValue::Array items;
    skip_whitespace();
    if (next_is(']')) {
      ++pos_;
      return JsonValue(std::move(items));
    }
    for (;;) {
      skip_whitespace();
      items.push_back(parse_value(depth));
      skip_whitespace();
      if (next_is(',')) {
        ++pos_;
      } else if (next_is(']')) {
        ++pos_;
        return JsonValue(std::move(items));
      } else {
        error("expected ',' or ']' in an array, found " + describe_here());
      }
    }
  }

  JsonValue parse_object(int depth) {
    check_depth(depth);
    ++pos_;  // '{'
    JsonValue::Object members;
    std::vector<size_t> key_offsets;  // for the duplicate-key message
    skip_whitespace();
    if (next_is('}')) {
      ++pos_;
      return JsonValue(std::move(members));
    }
    for (;;) {
      skip_whitespace();
      if (!next_is('"')) error("expected a string key in an object, found " + describe_here());
      key_offsets.push_back(pos_);
      std::string key = parse_string();
      skip_whitespace();
      if (!next_is(':')) error("expected ':' after an object key, found " + describe_here());
      ++pos_;
      skip_whitespace();
      JsonValue value = parse_value(depth);
      members.emplace_back(std::move(key), std::move(value));
      skip_whitespace();
      if (next_is(',')) {
        ++pos_;
      } else if (next_is('}')) {
        ++pos_;
        check_unique_keys(members, key_offsets);
        return JsonValue(std::move(members));
      } else {
        error("expected ',' or '}' in an object, found " + describe_here());
      }
    }
  }

  // Sorting keeps this O(n log n): a hostile header may hold a million keys in one object.
  void check_unique_keys(const JsonValue::Object& members, const std::vector<size_t>& key_offsets) const {
    if (members.size() < 2) return;
    std::vector<size_t> order(members.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return members[a].first < members[b].first; });
    for (size_t i = 1; i < order.size(); ++i) {
      const std::string& key = members[order[i]].first;
      if (key == members[order[i - 1]].first) {
        error_at(key_offsets[order[i]], "duplicate key " + quote_for_message(key));
      }
    }
  }

  std::string parse_string() {
    const size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      // Copy the run of plain ASCII characters in one go.
      const size_t run = pos_;
      while (!at_end()) {
        const unsigned char c = static_cast<unsigned char>(peek());
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
        ++pos_;
      }
      out.append(text_.substr(run, pos_ - run));
      if (at_end()) error_at(start, "unterminated string");
      const unsigned char c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c == '\\') {
        parse_escape(out);
      } else if (c < 0x20) {
        error("control character " + hex_byte(c) + " must be escaped in a string");
      } else {
        const size_t n = utf8_sequence_length(text_, pos_);
        if (n == 0) error("invalid UTF-8 (byte " + hex_byte(c) + ") in a string");
        out.append(text_.substr(pos_, n));
        pos_ += n;
      }
    }
  }

  void parse_escape(std::string& out) {
    const size_t at = pos_;  // the backslash
    ++pos_;
    if (at_end()) error_at(at, "unterminated escape sequence");
    const char e = peek();
    ++pos_;
    switch (e) {
      case '"': out.push_back('"'); return;
      case '\\': out.push_back('\\'); return;
      case '/': out.push_back('/'); return;
      case 'b': out.push_back('\b'); return;
      case 'f': out.push_back('\f'); return;
      case 'n': out.push_back('\n'); return;
      case 'r': out.push_back('\r'); return;
      case 't': out.push_back('\t'); return;
      case 'u': break;
      default: error_at(at, "invalid escape sequence '\\" + describe_escape_char(e) + "'");
    }
    uint32_t cp = read_hex4(at);
    if (cp >= 0xDC00 && cp <= 0xDFFF) error_at(at, "unpaired low surrogate in a \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      // Characters above U+FFFF are written as a UTF-16 surrogate pair: \uD83D\uDE00.
      if (!starts_with("\\u")) error_at(at, "high surrogate not followed by a \\u low surrogate");
      const size_t low_at = pos_;
      pos_ += 2;
      const uint32_t low = read_hex4(low_at);
      if (low < 0xDC00 || low > 0xDFFF) error_at(low_at, "high surrogate not followed by a low surrogate");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
  }

  static std::string describe_escape_char(char c) {
    const unsigned char u = static_cast<unsigned char>(c);
    return (u > 0x20 && u < 0x7F) ? std::string(1, c) : hex_byte(u);
  }

  // The four hex digits of a \u escape that started at `at`.
  uint32_t read_hex4(size_t at) {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      if (at_end()) error_at(at, "truncated \\u escape");
      const char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        error_at(at, "\\u escape needs four hex digits");
      }
      value = value * 16 + digit;
    }
    return value;
  }

  // number = -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?
  JsonValue::Number parse_number() {
    const size_t start = pos_;
    const bool negative = next_is('-');
    if (negative) ++pos_;
    if (options_.allow_nonfinite) {
      if (starts_with("Infinity")) {
        pos_ += 8;
        const double inf = std::numeric_limits<double>::infinity();
        return {negative ? -inf : inf, 0, false};
      }
      if (!negative && starts_with("NaN")) {
        pos_ += 3;
        return {std::numeric_limits<double>::quiet_NaN(), 0, false};
      }
    }
    if (at_end() || !is_digit(peek())) {
      if (starts_with("NaN") || starts_with("Infinity")) {
        error_at(start, "NaN and Infinity are not JSON (allow_nonfinite is off)");
      }
      if (negative) error("expected a digit after '-'");
      error("expected a value, found " + describe_here());
    }

    const size_t int_begin = pos_;
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && is_digit(peek())) error("leading zeros are not allowed in a number");
    } else {
      while (!at_end() && is_digit(peek())) ++pos_;
    }
    const size_t int_end = pos_;
    bool integral = true;
    size_t frac_begin = pos_, frac_end = pos_;
    if (next_is('.')) {
      integral = false;
      ++pos_;
      if (at_end() || !is_digit(peek())) error("expected a digit after '.'");
      frac_begin = pos_;
      while (!at_end() && is_digit(peek())) ++pos_;
      frac_end = pos_;
    }
    int64_t exponent = 0;
    if (next_is('e') || next_is('E')) {
      integral = false;
      ++pos_;
      bool exponent_negative = false;
      if (next_is('+') || next_is('-')) {
        exponent_negative = peek() == '-';
        ++pos_;
      }
      if (at_end() || !is_digit(peek())) error("expected a digit in the exponent");
      while (!at_end() && is_digit(peek())) {
        // Saturate: any exponent this large is out of range already.
        if (exponent < 100000000) exponent = exponent * 10 + (peek() - '0');
        ++pos_;
      }
      if (exponent_negative) exponent = -exponent;
    }

    const std::string_view lexeme = text_.substr(start, pos_ - start);
    JsonValue::Number number;
    if (integral && parse_int64(lexeme, number.integer)) {
      number.is_integer = true;
      number.value = (negative && number.integer == 0) ? -0.0 : static_cast<double>(number.integer);
      return number;
    }
    if (!decimal_to_double(lexeme, number.value)) {
      // Out of range. Decide which way from the decimal exponent of the leading digit:
      // too small rounds to zero (as every JSON reader does), too large is an error.
      int64_t magnitude;
      if (text_[int_begin] != '0') {
        magnitude = static_cast<int64_t>(int_end - int_begin) - 1 + exponent;
      } else {
        size_t first = frac_begin;
        while (first < frac_end && text_[first] == '0') ++first;
        magnitude = -static_cast<int64_t>(first - frac_begin + 1) + exponent;
      }
      if (magnitude > 0) error_at(start, "number " + quote_for_message(lexeme, 40) + " is out of range");
      number.value = negative ? -0.0 : 0.0;
    }
    return number;
  }

  std::string_view text_;
  const JsonOptions& options_;
  size_t pos_ = 0;
  size_t values_ = 0;
};

[[noreturn]] void wrong_type(JsonValue::Type actual, const char* wanted) {
  fail(ErrorCode::Internal, std::string("JsonValue: expected ") + wanted + ", found " + json_type_name(actual));
}

}  // namespace

const char* json_type_name(JsonValue::Type type) {
  switch (type) {
    case JsonValue::Type::Null: return "null";
    case JsonValue::Type::Bool: return "boolean";
    case JsonValue::Type::Number: return "number";
    case JsonValue::Type::String: return "string";
    case JsonValue::Type::Array: return "array";
    case JsonValue::Type::Object: return "object";
  }
  return "unknown";
}

bool JsonValue::as_bool() const {
  if (const bool* b = std::get_if<bool>(&v_)) return *b;
  wrong_type(type(), "a boolean");
}

double JsonValue::as_number() const {
  if (const Number* n = std::get_if<Number>(&v_)) return n->value;
  wrong_type(type(), "a number");
}

int64_t JsonValue::as_int64() const {
  const Number* n = std::get_if<Number>(&v_);
  if (n && n->is_integer) return n->integer;
  wrong_type(type(), "an integer");
}

const std::string& JsonValue::as_string() const {
  if (const std::string* s = std::get_if<std::string>(&v_)) return *s;
  wrong_type(type(), "a string");
}

const JsonValue::Array& JsonValue::as_array() const {
  if (const Array* a = std::get_if<Array>(&v_)) return *a;
  wrong_type(type(), "an array");
}

const JsonValue::Object& JsonValue::as_object() const {
  if (const Object* o = std::get_if<Object>(&v_)) return *o;
  wrong_type(type(), "an object");
}

const JsonValue* JsonValue::find(std::string_view key) const {
  for (const Member& member : as_object()) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

JsonValue parse_json(std::string_view text, const JsonOptions& options) {
  if (options.max_depth < 1 || options.max_depth > kJsonMaxSupportedDepth) {
    fail(ErrorCode::Argument, "JSON max_depth must be between 1 and " + std::to_string(kJsonMaxSupportedDepth) +
                                  ", got " + std::to_string(options.max_depth));
  }
  if (text.size() > options.max_bytes) {
    fail(ErrorCode::Resource, "JSON text is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                                  std::to_string(options.max_bytes));
  }
  return Parser(text, options).parse_document();
}

bool is_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string json_quote(std::string_view utf8) {
  std::string out;
  size_t bad_at = 0;
  if (!quote_into(out, utf8, true, std::numeric_limits<size_t>::max(), &bad_at)) {
    fail(ErrorCode::Argument, "string is not valid UTF-8 at byte " + std::to_string(bad_at) + ": " +
                                  quote_for_message(utf8));
  }
  return out;
}

std::string quote_for_message(std::string_view text, size_t max_bytes) {
  std::string out;
  quote_into(out, text, false, max_bytes, nullptr);
  return out;
}

}  // namespace fusediff::io
