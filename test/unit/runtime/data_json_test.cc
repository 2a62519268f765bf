//===- data_json_test.cc - The flat JSON-lines parser of the manifest -----===//

#include "runtime/src/data/json_lines.h"

#include <gtest/gtest.h>

using namespace fusion::rt;
using namespace fusion::rt::data;

namespace {

TEST(DataJson, ParsesAManifestLine) {
  StatusOr<JsonObject> object = parseFlatJsonObject(
      R"( {"path": "shards/web_shard_00000.bin", "n_tokens": 16384, "source": "web",)"
      R"( "weight": 0.6, "quality_score": -1.5e-3, "domain": "en", "ok": true, "x": null} )");
  ASSERT_TRUE(object.ok()) << object.status().toString();
  ASSERT_EQ(object->size(), 8u);
  EXPECT_EQ((*object)[0].first, "path");
  EXPECT_EQ((*object)[0].second.text, "shards/web_shard_00000.bin");
  EXPECT_EQ((*object)[1].second.asUnsigned(), 16384u);
  EXPECT_EQ((*object)[3].second.asDouble(), 0.6);
  EXPECT_FALSE((*object)[3].second.asUnsigned()); // 0.6 is not an integer
  EXPECT_EQ((*object)[4].second.asDouble(), -1.5e-3);
  EXPECT_FALSE((*object)[4].second.asUnsigned());
  EXPECT_EQ((*object)[6].second.kind, JsonValue::Kind::kBool);
  EXPECT_TRUE((*object)[6].second.boolean);
  EXPECT_EQ((*object)[7].second.kind, JsonValue::Kind::kNull);
  EXPECT_TRUE(parseFlatJsonObject("{}").ok());
}

TEST(DataJson, DecodesEscapesToUtf8) {
  StatusOr<JsonObject> object =
      parseFlatJsonObject(R"({"s": "a\"b\\c\/d\n\t\u00e9\u20ac\ud83d\ude00"})");
  ASSERT_TRUE(object.ok()) << object.status().toString();
  EXPECT_EQ((*object)[0].second.text, "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(jsonQuote("a\"b\\c\n\x01"), R"("a\"b\\c\u000a\u0001")");
  // Quoting and parsing round-trip.
  std::string tricky = "x\"y\\z\r\x1f\xc3\xa9";
  StatusOr<JsonObject> back = parseFlatJsonObject("{\"k\": " + jsonQuote(tricky) + "}");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ((*back)[0].second.text, tricky);
}

TEST(DataJson, IntegersAreExact) {
  StatusOr<JsonObject> object =
      parseFlatJsonObject(R"({"a": 18446744073709551615, "b": 18446744073709551616, "c": -1})");
  ASSERT_TRUE(object.ok());
  EXPECT_EQ((*object)[0].second.asUnsigned(), 18446744073709551615ull);
  EXPECT_FALSE((*object)[1].second.asUnsigned()); // overflows 64 bits
  EXPECT_FALSE((*object)[2].second.asUnsigned()); // negative
  EXPECT_EQ((*object)[2].second.asDouble(), -1.0);
}

TEST(DataJson, RejectsWithTheColumn) {
  struct Case {
    const char *text;
    const char *message;
  } cases[] = {
      {"", "column 1: empty line, expected a JSON object '{'"},
      {"[1]", "column 1: expected '{'"},
      {R"({"a": 1,})", "column 9: expected a member name (a string)"},
      {R"({"a" 1})", "column 6: expected ':' after the member name"},
      {R"({"a": {"b": 1}})", "column 7: nested objects are not supported (manifest lines are "
                             "flat objects)"},
      {R"({"a": [1]})", "column 7: nested arrays are not supported (manifest lines are flat "
                        "objects)"},
      {R"({"a": 1, "a": 2})", "column 10: duplicate member \"a\""},
      {R"({"a": 01})", "column 8: expected ',' or '}'"},
      {R"({"a": 1.})", "column 9: expected a digit after '.'"},
      {R"({"a": 1e})", "column 9: expected a digit in the exponent"},
      {R"({"a": -})", "column 8: expected a digit"},
      {R"({"a": tru})", "column 7: expected a value"},
      {R"({"a": "x)", "column 9: unterminated string"},
      {"{\"a\": \"x\ty\"}", "column 9: control character in a string (escape it)"},
      {R"({"a": "\q"})", "column 8: invalid escape '\\q'"},
      {R"({"a": "\u12"})", "column 8: \\u needs four hex digits"},
      {R"({"a": "\udc00"})", "column 8: unpaired low surrogate in \\u escape"},
      {R"({"a": "\ud800x"})", "column 8: unpaired high surrogate in \\u escape"},
      {R"({"a": 1} x)", "column 10: unexpected text after the object"},
      {R"({"a": 1)", "column 8: expected ',' or '}'"},
  };
  for (const Case &c : cases) {
    StatusOr<JsonObject> object = parseFlatJsonObject(c.text);
    ASSERT_FALSE(object.ok()) << c.text;
    EXPECT_EQ(object.status().message(), c.message) << c.text;
  }
}

} // namespace
