// A tiny test harness for the native unit tests, header-only so that a test binary is just
// the sources under test plus tests/*.cpp.
//
//   TEST_CASE("json: nested arrays") { CHECK_EQ(parse_json("[[1]]").as_array().size(), 1u); }
//
// A failed CHECK stops its test case (later checks often depend on it) and the runner goes
// on with the next one. The binary runs every case, or those whose name contains argv[1],
// prints each failure, ends with "N passed, M failed" and exits non-zero on failure.
#pragma once
#include <cmath>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"

namespace fusediff::test {

struct TestCase {
  const char* name;
  void (*body)();
  const char* file;
  int line;
};

inline std::vector<TestCase>& registry() {
  static std::vector<TestCase> cases;
  return cases;
}

struct Registrar {
  Registrar(const char* name, void (*body)(), const char* file, int line) {
    registry().push_back({name, body, file, line});
  }
};

// Thrown by a failed check; carries the report.
struct CheckFailed {
  std::string message;
};

template <typename T, typename = void>
struct Printable : std::false_type {};
template <typename T>
struct Printable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
    : std::true_type {};

// How a value appears in a failure report.
template <typename T>
std::string show(const T& value) {
  if constexpr (std::is_same_v<T, ErrorCode>) {
    return error_code_name(value);
  } else if constexpr (std::is_enum_v<T>) {
    return std::to_string(static_cast<long long>(value));
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_floating_point_v<T>) {
    std::ostringstream out;
    out.precision(17);
    out << value;
    return out.str();
  } else if constexpr (Printable<T>::value) {
    std::ostringstream out;
    out << value;
    return out.str();
  } else {
    return "(unprintable)";
  }
}

[[noreturn]] inline void report(const char* file, int line, const std::string& what) {
  throw CheckFailed{std::string(file) + ":" + std::to_string(line) + ": " + what};
}

template <typename A, typename B>
void check_eq(const A& a, const B& b, const char* a_text, const char* b_text, const char* file, int line) {
  if (!(a == b)) {
    report(file, line, std::string("CHECK_EQ(") + a_text + ", " + b_text + "): " + show(a) + " != " + show(b));
  }
}

inline void check_near(double a, double b, double tolerance, const char* a_text, const char* b_text,
                       const char* file, int line) {
  if (!(std::fabs(a - b) <= tolerance)) {
    report(file, line, std::string("CHECK_NEAR(") + a_text + ", " + b_text + "): " + show(a) + " and " + show(b) +
                           " differ by more than " + show(tolerance));
  }
}

// Runs `body` and checks that it throws fusediff::Error with `code` and, when `needle` is
// not empty, a message containing it.
template <typename Body>
void check_throws(Body&& body, ErrorCode code, const std::string& needle, const char* text, const char* file,
                  int line) {
  try {
    body();
  } catch (const Error& e) {
    if (e.code() != code) {
      report(file, line, std::string(text) + ": threw " + error_code_name(e.code()) + " (" + e.what() +
                             "), expected " + error_code_name(code));
    }
    if (!needle.empty() && std::string(e.what()).find(needle) == std::string::npos) {
      report(file, line, std::string(text) + ": message \"" + e.what() + "\" does not contain \"" + needle + "\"");
    }
    return;
  } catch (const std::exception& e) {
    report(file, line, std::string(text) + ": threw a non-fusediff exception: " + e.what());
  }
  report(file, line, std::string(text) + ": did not throw, expected " + error_code_name(code));
}

inline int run_all(int argc, char** argv) {
  const std::string filter = argc > 1 ? argv[1] : "";
  int passed = 0, failed = 0;
  for (const TestCase& test : registry()) {
    if (!filter.empty() && std::string(test.name).find(filter) == std::string::npos) continue;
    std::string failure;
    try {
      test.body();
    } catch (const CheckFailed& f) {
      failure = f.message;
    } catch (const std::exception& e) {
      failure = std::string("uncaught exception: ") + e.what();
    } catch (...) {
      failure = "uncaught non-standard exception";
    }
    if (failure.empty()) {
      ++passed;
    } else {
      ++failed;
      std::printf("FAIL %s (%s:%d)\n  %s\n", test.name, test.file, test.line, failure.c_str());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace fusediff::test

#define FUSEDIFF_TEST_CAT2(a, b) a##b
#define FUSEDIFF_TEST_CAT(a, b) FUSEDIFF_TEST_CAT2(a, b)

// One TEST_CASE per line of a file; the names are local to the file.
#define TEST_CASE(name)                                                                              \
  static void FUSEDIFF_TEST_CAT(fusediff_test_body_, __LINE__)();                                    \
  static const ::fusediff::test::Registrar FUSEDIFF_TEST_CAT(fusediff_test_registrar_, __LINE__)(    \
      name, &FUSEDIFF_TEST_CAT(fusediff_test_body_, __LINE__), __FILE__, __LINE__);                  \
  static void FUSEDIFF_TEST_CAT(fusediff_test_body_, __LINE__)()

#define CHECK(condition)                                                                 \
  do {                                                                                   \
    if (!(condition)) ::fusediff::test::report(__FILE__, __LINE__, "CHECK(" #condition ")"); \
  } while (0)

#define CHECK_EQ(a, b) ::fusediff::test::check_eq((a), (b), #a, #b, __FILE__, __LINE__)

#define CHECK_NEAR(a, b, tolerance) ::fusediff::test::check_near((a), (b), (tolerance), #a, #b, __FILE__, __LINE__)

#define CHECK_THROWS_CODE(expression, code) \
  ::fusediff::test::check_throws([&] { (void)(expression); }, (code), "", #expression, __FILE__, __LINE__)

// Also checks that the message contains `needle` (the message must say what and where).
#define CHECK_THROWS_WITH(expression, code, needle) \
  ::fusediff::test::check_throws([&] { (void)(expression); }, (code), (needle), #expression, __FILE__, __LINE__)
