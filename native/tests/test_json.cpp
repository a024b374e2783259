// Tests of the strict JSON parser: the grammar, exact numbers, strings and escapes, limits,
// and that malformed or hostile text always ends in fusediff::Error.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "io/json.h"
#include "tests/check.h"

using fusediff::ErrorCode;
using fusediff::io::JsonOptions;
using fusediff::io::JsonValue;
using fusediff::io::json_quote;
using fusediff::io::parse_json;
using fusediff::io::quote_for_message;

namespace {

JsonOptions nonfinite() {
  JsonOptions options;
  options.allow_nonfinite = true;
  return options;
}

}  // namespace

TEST_CASE("json: literals and whitespace") {
  CHECK(parse_json("null").is_null());
  CHECK_EQ(parse_json("true").as_bool(), true);
  CHECK_EQ(parse_json(" \t\r\nfalse \n").as_bool(), false);
  CHECK_EQ(parse_json("\"\"").as_string(), std::string());
}

TEST_CASE("json: integers are exact beyond 2^53") {
  const JsonValue big = parse_json("9007199254740993");  // 2^53 + 1: not a double
  CHECK(big.is_integer());
  CHECK_EQ(big.as_int64(), int64_t{9007199254740993});
  CHECK_EQ(parse_json("9223372036854775807").as_int64(), std::numeric_limits<int64_t>::max());
  CHECK_EQ(parse_json("-9223372036854775808").as_int64(), std::numeric_limits<int64_t>::min());
  const JsonValue beyond = parse_json("9223372036854775808");  // still a number, no longer an int64
  CHECK(beyond.is_number());
  CHECK(!beyond.is_integer());
  CHECK_EQ(beyond.as_number(), 9223372036854775808.0);
  CHECK(!parse_json("-9223372036854775809").is_integer());
  CHECK_THROWS_CODE(beyond.as_int64(), ErrorCode::Internal);
}

TEST_CASE("json: numbers with fraction or exponent are not integers") {
  for (const char* text : {"2.0", "2e0", "1E+2", "25e-1"}) {
    const JsonValue v = parse_json(text);
    CHECK(v.is_number());
    CHECK(!v.is_integer());
  }
  CHECK_EQ(parse_json("2.5").as_number(), 2.5);
  CHECK_EQ(parse_json("1E+2").as_number(), 100.0);
  CHECK_EQ(parse_json("-0.125e1").as_number(), -1.25);
}

TEST_CASE("json: decimal to double is correctly rounded") {
  CHECK_EQ(parse_json("0.1").as_number(), 0.1);
  CHECK_EQ(parse_json("0.30000000000000004").as_number(), 0.30000000000000004);
  CHECK_EQ(parse_json("1.7976931348623157e308").as_number(), std::numeric_limits<double>::max());
  CHECK_EQ(parse_json("2.2250738585072014e-308").as_number(), std::numeric_limits<double>::min());
  CHECK_EQ(parse_json("4.9406564584124654e-324").as_number(), std::numeric_limits<double>::denorm_min());
  CHECK_EQ(parse_json("123456789012345678901234567890").as_number(), 1.2345678901234568e29);
}

TEST_CASE("json: negative zero keeps its sign") {
  CHECK(std::signbit(parse_json("-0").as_number()));
  CHECK_EQ(parse_json("-0").as_int64(), int64_t{0});
  CHECK(std::signbit(parse_json("-0.0").as_number()));
}

TEST_CASE("json: out-of-range numbers") {
  CHECK_THROWS_WITH(parse_json("1e309"), ErrorCode::Format, "out of range");
  CHECK_THROWS_CODE(parse_json("-1e400"), ErrorCode::Format);
  CHECK_THROWS_CODE(parse_json("1" + std::string(400, '0')), ErrorCode::Format);
  CHECK_THROWS_CODE(parse_json("1e99999999999999999999"), ErrorCode::Format);
  // Too small rounds to zero, as in every JSON reader.
  CHECK_EQ(parse_json("1e-400").as_number(), 0.0);
  CHECK(std::signbit(parse_json("-1e-400").as_number()));
  CHECK_EQ(parse_json("0." + std::string(400, '0') + "1").as_number(), 0.0);
  CHECK_EQ(parse_json("1e-99999999999999999999").as_number(), 0.0);
  CHECK_EQ(parse_json("0e99999999999").as_number(), 0.0);
}

TEST_CASE("json: number grammar violations") {
  for (const char* text : {"01", "-01", "00", "-", "1.", "1.e5", ".5", "+1", "1e", "1e+", "1E-", "0x10", "--1",
                           "1.5.2", "- 1", "1e5.5", "inf", "nan", "Infinity", "-Infinity", "NaN", "1_000"}) {
    CHECK_THROWS_CODE(parse_json(text), ErrorCode::Format);
  }
  CHECK_THROWS_WITH(parse_json("[01]"), ErrorCode::Format, "at byte 2: leading zeros");
  CHECK_THROWS_WITH(parse_json("NaN"), ErrorCode::Format, "allow_nonfinite");
  CHECK_THROWS_WITH(parse_json("-Infinity"), ErrorCode::Format, "allow_nonfinite");
}

TEST_CASE("json: allow_nonfinite accepts Python's Infinity, -Infinity and NaN") {
  const JsonValue v = parse_json("[Infinity, -Infinity, NaN, 1]", nonfinite());
  const JsonValue::Array& a = v.as_array();
  CHECK_EQ(a[0].as_number(), std::numeric_limits<double>::infinity());
  CHECK_EQ(a[1].as_number(), -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(a[2].as_number()));
  CHECK(!a[0].is_integer());
  CHECK_EQ(a[3].as_int64(), int64_t{1});
  // A diffusers scheduler config.
  const JsonValue config = parse_json(R"({"_class_name": "X", "clip_sample_range": -Infinity})", nonfinite());
  CHECK_EQ(config.find("clip_sample_range")->as_number(), -std::numeric_limits<double>::infinity());
  for (const char* text : {"-NaN", "infinity", "Inf", "+Infinity", "NaNa", "Infinityy", "-Infinit"}) {
    CHECK_THROWS_CODE(parse_json(text, nonfinite()), ErrorCode::Format);
  }
}

TEST_CASE("json: string escapes") {
  CHECK_EQ(parse_json(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").as_string(), std::string("a\"b\\c/d\be\ff\ng\rh\ti"));
  CHECK_EQ(parse_json(R"("\u0041\u00e9\u20AC")").as_string(), std::string("A\xC3\xA9\xE2\x82\xAC"));
  CHECK_EQ(parse_json(R"("\ud83d\ude00")").as_string(), std::string("\xF0\x9F\x98\x80"));  // U+1F600
  CHECK_EQ(parse_json(R"("\uDBFF\uDFFF")").as_string(), std::string("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  const std::string nul = parse_json(R"("a\u0000b")").as_string();
  CHECK_EQ(nul.size(), size_t{3});
  CHECK_EQ(nul[1], '\0');
}

TEST_CASE("json: bad escapes and surrogates") {
  CHECK_THROWS_WITH(parse_json(R"("\ud83d")"), ErrorCode::Format, "surrogate");
  CHECK_THROWS_WITH(parse_json(R"("\ud83dx")"), ErrorCode::Format, "surrogate");
  CHECK_THROWS_WITH(parse_json(R"("\ud83d\u0041")"), ErrorCode::Format, "surrogate");
  CHECK_THROWS_WITH(parse_json(R"("\ud83d\ud83d")"), ErrorCode::Format, "surrogate");
  CHECK_THROWS_WITH(parse_json(R"("\ude00")"), ErrorCode::Format, "low surrogate");
  CHECK_THROWS_WITH(parse_json(R"("\x41")"), ErrorCode::Format, "invalid escape");
  CHECK_THROWS_WITH(parse_json(R"("\u12")"), ErrorCode::Format, "four hex digits");
  CHECK_THROWS_WITH(parse_json(R"("\u12G4")"), ErrorCode::Format, "four hex digits");
  CHECK_THROWS_CODE(parse_json("\"\\u12"), ErrorCode::Format);
  CHECK_THROWS_CODE(parse_json("\"\\"), ErrorCode::Format);
  CHECK_THROWS_CODE(parse_json("\"\\\x01\""), ErrorCode::Format);
}

TEST_CASE("json: raw strings must be UTF-8 without control characters") {
  CHECK_EQ(parse_json("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"").as_string(), std::string("caf\xC3\xA9 \xF0\x9F\x98\x80"));
  CHECK_THROWS_WITH(parse_json("\"a\nb\""), ErrorCode::Format, "at byte 2: control character 0x0a");
  CHECK_THROWS_CODE(parse_json(std::string("\"a\0b\"", 5)), ErrorCode::Format);
  for (const char* bad : {"\"\xC3\"", "\"\xC0\x80\"", "\"\xC1\xBF\"", "\"\xE0\x80\x80\"", "\"\xED\xA0\x80\"",
                          "\"\xF4\x90\x80\x80\"", "\"\xF5\x80\x80\x80\"", "\"\xFF\"", "\"\x80\"", "\"\xE2\x82\"",
                          "\"\xF0\x9F\x98\""}) {
    CHECK_THROWS_WITH(parse_json(bad), ErrorCode::Format, "UTF-8");
  }
  CHECK_THROWS_WITH(parse_json("\"abc"), ErrorCode::Format, "at byte 0: unterminated string");
  CHECK_THROWS_WITH(parse_json("\"ab\xC3"), ErrorCode::Format, "UTF-8");
}

TEST_CASE("json: bytes outside strings must be JSON") {
  CHECK_THROWS_WITH(parse_json("\xEF\xBB\xBF{}"), ErrorCode::Format, "byte order mark");
  CHECK_THROWS_CODE(parse_json("\xC3\xA9"), ErrorCode::Format);
  CHECK_THROWS_CODE(parse_json("[1,\v2]"), ErrorCode::Format);
  CHECK_THROWS_CODE(parse_json(std::string("[1]\0", 4)), ErrorCode::Format);
}

TEST_CASE("json: arrays and objects keep order") {
  const JsonValue v = parse_json(R"( { "z" : [1, [ ], {}], "a": {"k": null}, "m": "s" } )");
  const JsonValue::Object& o = v.as_object();
  CHECK_EQ(o.size(), size_t{3});
  CHECK_EQ(o[0].first, std::string("z"));
  CHECK_EQ(o[1].first, std::string("a"));
  CHECK_EQ(o[2].first, std::string("m"));
  CHECK_EQ(o[0].second.as_array().size(), size_t{3});
  CHECK(o[0].second.as_array()[1].as_array().empty());
  CHECK(o[0].second.as_array()[2].as_object().empty());
  CHECK(v.find("a")->find("k")->is_null());
  CHECK(v.find("missing") == nullptr);
  CHECK_EQ(v.find("m")->as_string(), std::string("s"));
}

TEST_CASE("json: structural errors say where") {
  CHECK_THROWS_WITH(parse_json(""), ErrorCode::Format, "at byte 0: unexpected end of input");
  CHECK_THROWS_WITH(parse_json("   "), ErrorCode::Format, "at byte 3");
  CHECK_THROWS_WITH(parse_json("[1,]"), ErrorCode::Format, "at byte 3: expected a value, found ']'");
  CHECK_THROWS_WITH(parse_json("[1 2]"), ErrorCode::Format, "at byte 3: expected ',' or ']'");
  CHECK_THROWS_WITH(parse_json("{\"a\":1,}"), ErrorCode::Format, "at byte 7: expected a string key");
  CHECK_THROWS_WITH(parse_json("{\"a\" 1}"), ErrorCode::Format, "expected ':'");
  CHECK_THROWS_WITH(parse_json("{1:2}"), ErrorCode::Format, "expected a string key");
  CHECK_THROWS_WITH(parse_json("{'a':1}"), ErrorCode::Format, "expected a string key");
  CHECK_THROWS_WITH(parse_json("1 2"), ErrorCode::Format, "at byte 2: unexpected '2' after the JSON value");
  CHECK_THROWS_WITH(parse_json("tru"), ErrorCode::Format, "expected 'true'");
  CHECK_THROWS_CODE(parse_json("nul"), ErrorCode::Format);
  CHECK_THROWS_CODE(parse_json("True"), ErrorCode::Format);
  for (const char* text : {"[", "{", "[1", "[1,", "{\"a\"", "{\"a\":", "{\"a\":1", "]", "}", ",", ":", "[}", "{]"}) {
    CHECK_THROWS_CODE(parse_json(text), ErrorCode::Format);
  }
}

TEST_CASE("json: duplicate keys are rejected with their position") {
  CHECK_THROWS_WITH(parse_json(R"({"a":1,"b":2,"a":3})"), ErrorCode::Format, "at byte 13: duplicate key \"a\"");
  CHECK_THROWS_CODE(parse_json(R"({"x":{"a":1,"a":1}})"), ErrorCode::Format);
  // Keys equal after unescaping are the same key.
  CHECK_THROWS_CODE(parse_json(R"({"a":1,"\u0061":2})"), ErrorCode::Format);
  std::string many = "{";
  for (int i = 0; i < 5000; ++i) many += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  CHECK_EQ(parse_json(many + "\"last\":0}").as_object().size(), size_t{5001});
  CHECK_THROWS_WITH(parse_json(many + "\"k4321\":0}"), ErrorCode::Format, "duplicate key \"k4321\"");
}

TEST_CASE("json: nesting depth is bounded") {
  const auto nested = [](int depth) { return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']'); };
  CHECK(parse_json(nested(64)).is_array());
  CHECK_THROWS_WITH(parse_json(nested(65)), ErrorCode::Format, "at byte 64: nesting deeper than 64 levels");
  CHECK_THROWS_WITH(parse_json(std::string(10000, '[')), ErrorCode::Format, "nesting deeper");
  CHECK_THROWS_CODE(parse_json(std::string(100000, '{')), ErrorCode::Format);
  std::string objects;
  for (int i = 0; i < 100; ++i) objects += "{\"a\":";
  CHECK_THROWS_WITH(parse_json(objects), ErrorCode::Format, "nesting deeper");
  JsonOptions shallow;
  shallow.max_depth = 2;
  CHECK(parse_json("[[1]]", shallow).is_array());
  CHECK_THROWS_CODE(parse_json("[[[1]]]", shallow), ErrorCode::Format);
  JsonOptions bad;
  bad.max_depth = 0;
  CHECK_THROWS_CODE(parse_json("1", bad), ErrorCode::Argument);
  bad.max_depth = 100000;
  CHECK_THROWS_CODE(parse_json("1", bad), ErrorCode::Argument);
}

TEST_CASE("json: size and value-count limits") {
  JsonOptions options;
  options.max_bytes = 8;
  CHECK(parse_json("[1,2,3]", options).is_array());
  CHECK_THROWS_WITH(parse_json("[1,2,3,4]", options), ErrorCode::Resource, "9 bytes");
  options = JsonOptions();
  options.max_values = 4;
  CHECK(parse_json("[1,2,3]", options).is_array());  // the array is a value too
  CHECK_THROWS_WITH(parse_json("[1,2,3,4]", options), ErrorCode::Resource, "more than 4 values");
}

TEST_CASE("json: wrong-type access is a caller bug") {
  const JsonValue v = parse_json("[1]");
  CHECK_THROWS_WITH(v.as_string(), ErrorCode::Internal, "expected a string, found array");
  CHECK_THROWS_CODE(v.as_object(), ErrorCode::Internal);
  CHECK_THROWS_CODE(v.find("a"), ErrorCode::Internal);
  CHECK_THROWS_CODE(v.as_array()[0].as_bool(), ErrorCode::Internal);
  CHECK_THROWS_CODE(JsonValue().as_number(), ErrorCode::Internal);
  CHECK_EQ(std::string(fusediff::io::json_type_name(JsonValue::Type::Object)), std::string("object"));
}

TEST_CASE("json: json_quote escapes and round-trips") {
  const std::string text = std::string("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f \xC3\xA9\xF0\x9F\x98\x80") + '\0' + "end";
  const std::string quoted = json_quote(text);
  CHECK_EQ(quoted.substr(0, 11), std::string("\"q\\\"b\\\\s/\\b"));
  CHECK(quoted.find("\\u0001") != std::string::npos);
  CHECK(quoted.find("\\u0000") != std::string::npos);
  CHECK_EQ(parse_json(quoted).as_string(), text);
  CHECK_THROWS_WITH(json_quote("ab\xFF"), ErrorCode::Argument, "at byte 2");
  CHECK_THROWS_CODE(json_quote("\xED\xA0\x80"), ErrorCode::Argument);
}

TEST_CASE("json: quote_for_message is safe for any bytes and bounded") {
  CHECK_EQ(quote_for_message("a\xFF\nb"), std::string("\"a\\xff\\nb\""));
  const std::string long_name(100000, 'x');
  const std::string shown = quote_for_message(long_name, 10);
  CHECK_EQ(shown, "\"" + std::string(10, 'x') + "...\"");
  // Never cuts a UTF-8 sequence in half.
  CHECK_EQ(quote_for_message("\xC3\xA9\xC3\xA9", 1), std::string("\"\xC3\xA9...\""));
}

TEST_CASE("json: every truncation of a document is rejected, never crashes") {
  const std::string doc =
      R"({"k":[1,-2.5e-3,true,false,null,"s\u00e9\ud83d\ude00\n"],"o":{"x":{}},"e":[],"n":-0,"big":12345678901234567890})";
  CHECK(parse_json(doc).is_object());
  for (size_t n = 0; n < doc.size(); ++n) {
    CHECK_THROWS_CODE(parse_json(doc.substr(0, n)), ErrorCode::Format);
  }
}

TEST_CASE("json: random mutations parse or fail with Format") {
  const std::string doc = R"({"a":[1,2.5,"x\u0041",{"b":null}],"c":true,"d":-1e3,"e":"\ud83d\ude00"})";
  const char alphabet[] = "{}[]\":,.-+eE0123456789tfnu\\ \x80\xC3\xED\xF4\xFF";
  uint64_t state = 0x9E3779B97F4A7C15ull;
  const auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int round = 0; round < 20000; ++round) {
    std::string text = doc;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = static_cast<size_t>(next() % text.size());
      const char c = alphabet[next() % (sizeof alphabet - 1)];
      switch (next() % 3) {
        case 0: text[at] = c; break;
        case 1: text.insert(at, 1, c); break;
        default: text.erase(at, 1); break;
      }
      if (text.empty()) text = "x";
    }
    try {
      parse_json(text, nonfinite());
    } catch (const fusediff::Error& error) {
      CHECK_EQ(error.code(), ErrorCode::Format);
    }
  }
}
