// The test-only JSON Schema validator (tests/schema_validator.h): each supported keyword's
// violation at the right path, unsupported keywords refused, and the shipped schemas held
// against alert_to_json() records the captures never produce (ICMP, IPv6, no sample, assets).
#include "tests/schema_validator.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/alert_writer.h"

#include <nlohmann/json.hpp>

namespace exfiltap::testing {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const json kSchema = json::parse(R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "every supported keyword once",
  "type": "object",
  "required": ["id", "name"],
  "additionalProperties": false,
  "properties": {
    "id": {"type": "integer", "minimum": 0, "maximum": 100},
    "name": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
    "kind": {"enum": ["a", "b"]},
    "version": {"const": 1},
    "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"$ref": "#/$defs/tag"}},
    "ratio": {"type": ["number", "null"]},
    "extra": {"type": "object", "additionalProperties": {"type": "boolean"}},
    "old": {"$ref": "#/definitions/old"}
  },
  "$defs": {"tag": {"type": "string", "pattern": "^t"}},
  "definitions": {"old": {"type": "boolean"}}
})");

json valid_doc() {
    return json::parse(R"({"id": 7, "name": "abc", "kind": "a", "version": 1, "tags": ["t1"],
        "ratio": 0.5, "extra": {"x": true}, "old": false})");
}

std::vector<std::string> validate_with(const std::string& key, const json& value) {
    json doc = valid_doc();
    doc[key] = value;
    return validate(kSchema, doc);
}

TEST(SchemaValidatorTest, ValidDocumentPasses) {
    EXPECT_THAT(validate(kSchema, valid_doc()), IsEmpty());
}

TEST(SchemaValidatorTest, WrongTypeIsReportedAtItsPath) {
    EXPECT_THAT(validate_with("name", 5), ElementsAre("/name: expected type string, got integer"));
}

TEST(SchemaValidatorTest, WrongTypeOfTheDocumentIsReportedAtTheRoot) {
    EXPECT_THAT(validate(kSchema, json::array()),
            ElementsAre("(root): expected type object, got array"));
}

TEST(SchemaValidatorTest, IntegerTakesWholeFloatsButNotFractions) {
    EXPECT_THAT(validate_with("id", 7.0), IsEmpty());
    EXPECT_THAT(validate_with("id", 7.5), ElementsAre("/id: expected type integer, got number"));
}

TEST(SchemaValidatorTest, TypeListAcceptsAnyListedTypeOnly) {
    EXPECT_THAT(validate_with("ratio", nullptr), IsEmpty());
    EXPECT_THAT(validate_with("ratio", "x"),
            ElementsAre("/ratio: expected type [\"number\",\"null\"], got string"));
}

TEST(SchemaValidatorTest, ValueOutsideEnumIsReported) {
    EXPECT_THAT(validate_with("kind", "c"),
            ElementsAre("/kind: value \"c\" is not one of [\"a\",\"b\"]"));
}

TEST(SchemaValidatorTest, ValueOtherThanConstIsReported) {
    EXPECT_THAT(
            validate_with("version", 2), ElementsAre("/version: value 2 is not the constant 1"));
}

TEST(SchemaValidatorTest, MissingRequiredPropertyIsReportedAtItsPath) {
    json doc = valid_doc();
    doc.erase("name");
    EXPECT_THAT(validate(kSchema, doc), ElementsAre("/name: required property missing"));
}

TEST(SchemaValidatorTest, UnknownPropertyIsRefusedWhenAdditionalPropertiesIsFalse) {
    EXPECT_THAT(validate_with("surprise", 1),
            ElementsAre("/surprise: additional property not allowed"));
}

TEST(SchemaValidatorTest, AdditionalPropertiesSchemaChecksEveryUnlistedProperty) {
    EXPECT_THAT(validate_with("extra", {{"x", true}, {"y", 1}}),
            ElementsAre("/extra/y: expected type boolean, got integer"));
}

TEST(SchemaValidatorTest, ItemViolationNamesItsIndex) {
    EXPECT_THAT(
            validate_with("tags", {"t1", "u2"}), ElementsAre("/tags/1: does not match pattern ^t"));
}

TEST(SchemaValidatorTest, TooFewItemsAreReported) {
    EXPECT_THAT(validate_with("tags", json::array()),
            ElementsAre("/tags: has 0 items, fewer than minItems 1"));
}

TEST(SchemaValidatorTest, TooManyItemsAreReported) {
    EXPECT_THAT(validate_with("tags", {"t1", "t2", "t3"}),
            ElementsAre("/tags: has 3 items, more than maxItems 2"));
}

TEST(SchemaValidatorTest, NumberBelowMinimumIsReported) {
    EXPECT_THAT(validate_with("id", -1), ElementsAre("/id: -1 is less than minimum 0"));
}

TEST(SchemaValidatorTest, NumberAboveMaximumIsReported) {
    EXPECT_THAT(validate_with("id", 101), ElementsAre("/id: 101 is greater than maximum 100"));
}

TEST(SchemaValidatorTest, LargestUnsignedIsComparedExactly) {
    const json schema = {{"maximum", 18446744073709551614ULL}};
    EXPECT_THAT(validate(schema, json(18446744073709551614ULL)), IsEmpty());
    EXPECT_THAT(validate(schema, json(18446744073709551615ULL)),
            ElementsAre("(root): 18446744073709551615 is greater than maximum "
                        "18446744073709551614"));
}

TEST(SchemaValidatorTest, ShortStringIsReportedWithMinLength) {
    EXPECT_THAT(
            validate_with("name", "a"), ElementsAre("/name: length 1 is less than minLength 2"));
}

TEST(SchemaValidatorTest, MinLengthCountsCodePointsNotBytes) {
    const json schema = {{"minLength", 2}};
    EXPECT_THAT(validate(schema, json("\xC3\xA9")), ElementsAre(HasSubstr("length 1")));
}

TEST(SchemaValidatorTest, PatternMismatchNamesThePattern) {
    EXPECT_THAT(
            validate_with("name", "ABC"), ElementsAre("/name: does not match pattern ^[a-z]+$"));
}

TEST(SchemaValidatorTest, PatternIsUnanchoredLikeTheSpecSays) {
    EXPECT_THAT(validate(json{{"pattern", "b"}}, json("abc")), IsEmpty());
}

TEST(SchemaValidatorTest, PatternMatchesCodePointsNotBytes) {
    const json schema = {{"pattern", "^\\*+[^*]{0,4}$"}};
    // Four replacement characters are four code points but twelve bytes.
    EXPECT_THAT(validate(schema, json("**\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD")),
            IsEmpty());
    EXPECT_THAT(validate(schema, json("**12345")), ElementsAre(HasSubstr("does not match")));
}

TEST(SchemaValidatorTest, RefIntoDefinitionsIsFollowed) {
    EXPECT_THAT(validate_with("old", 1), ElementsAre("/old: expected type boolean, got integer"));
}

TEST(SchemaValidatorTest, KeyWithSlashIsEscapedInThePath) {
    const json schema = {{"additionalProperties", false}};
    EXPECT_THAT(validate(schema, json{{"a/b~c", 1}}),
            ElementsAre("/a~1b~0c: additional property not allowed"));
}

TEST(SchemaValidatorTest, FalseSchemaRefusesAnyValue) {
    EXPECT_THAT(validate(json(false), json(1)),
            ElementsAre("(root): no value is allowed here (schema false)"));
}

TEST(SchemaValidatorTest, UnresolvableRefIsASchemaError) {
    const json schema = {{"properties", {{"a", {{"$ref", "#/$defs/missing"}}}}}};
    EXPECT_THAT(validate(schema, json::object()),
            ElementsAre(HasSubstr("schema #/properties/a/$ref: cannot resolve")));
}

TEST(SchemaValidatorTest, RemoteRefIsASchemaError) {
    const json schema = {{"$ref", "other.json#/x"}};
    EXPECT_THAT(validate(schema, json(1)), ElementsAre(HasSubstr("cannot resolve")));
}

TEST(SchemaValidatorTest, RefCycleIsReportedInsteadOfLooping) {
    const json schema = {{"$ref", "#/$defs/a"},
            {"$defs", {{"a", {{"$ref", "#/$defs/b"}}}, {"b", {{"$ref", "#/$defs/a"}}}}}};
    EXPECT_THAT(validate(schema, json(1)), ElementsAre(HasSubstr("$ref chain longer than")));
}

TEST(SchemaValidatorTest, RefToANonSchemaPlaceIsCheckedAsASchema) {
    const json schema = {{"const", {{"format", "x"}}}, {"$ref", "#/const"}};
    EXPECT_THAT(
            validate(schema, json(1)), ElementsAre("schema #/const: unsupported keyword format"));
}

TEST(SchemaValidatorTest, BadPatternIsASchemaError) {
    EXPECT_THAT(validate(json{{"pattern", "(["}}, json("x")),
            ElementsAre(HasSubstr("schema #/pattern: is not an ECMAScript regular expression")));
}

TEST(SchemaValidatorTest, UnknownDialectIsASchemaError) {
    const json schema = {{"$schema", "http://json-schema.org/draft-04/schema#"}};
    EXPECT_THAT(validate(schema, json(1)), ElementsAre(HasSubstr("unsupported dialect")));
}

TEST(SchemaValidatorTest, UnknownTypeNameIsASchemaError) {
    EXPECT_THAT(validate(json{{"type", "int"}}, json(1)),
            ElementsAre("schema #/type: unknown type \"int\""));
}

TEST(SchemaValidatorTest, ArrayFormOfItemsIsUnsupported) {
    EXPECT_THAT(validate(json{{"items", json::array({json::object()})}}, json::array()),
            ElementsAre("schema #/items: unsupported keyword items (array form)"));
}

class UnsupportedKeywordTest : public ::testing::TestWithParam<std::string> {};

// The keyword sits under a property the document lacks, so only the schema check can see it.
TEST_P(UnsupportedKeywordTest, IsReportedEvenWhereTheDocumentNeverReaches) {
    const json schema = {{"properties", {{"absent", {{GetParam(), json::object()}}}}}};
    EXPECT_THAT(validate(schema, json::object()),
            ElementsAre("schema #/properties/absent: unsupported keyword " + GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Keywords, UnsupportedKeywordTest,
        ::testing::Values("format", "oneOf", "anyOf", "allOf", "not", "if", "maxLength",
                "exclusiveMinimum", "multipleOf", "patternProperties", "propertyNames",
                "dependentRequired", "prefixItems", "contains", "uniqueItems", "$anchor",
                "$dynamicRef", "unevaluatedProperties", "typo"));

TEST(SchemaValidatorTest, SchemaErrorsStopTheDocumentCheck) {
    const json schema = {{"type", "string"}, {"format", "date-time"}};
    EXPECT_THAT(validate(schema, json(1)), ElementsAre("schema #: unsupported keyword format"));
}

// The shipped schemas against records of alert_to_json() that the integration captures do not
// produce. The integration test validates what real runs write.
json load_schema(const std::string& name) {
    std::ifstream in(std::string(EXFILTAP_SOURCE_ROOT) + "/schema/" + name);
    EXPECT_TRUE(in.good()) << name;
    return json::parse(in, nullptr, false);
}

std::array<uint8_t, 16> ip(const char* text) {
    std::array<uint8_t, 16> out{};
    if (inet_pton(AF_INET, text, out.data()) != 1) {
        EXPECT_EQ(inet_pton(AF_INET6, text, out.data()), 1) << text;
    }
    return out;
}

control::AlertRecord tcp_record() {
    control::AlertRecord r;
    r.timestamp_s = 1767225600.5;
    r.flow_id = 18446744073709551615ULL;
    r.src = ip("10.0.0.1");
    r.dst = ip("203.0.113.9");
    r.src_port = 40000;
    r.dst_port = 443;
    r.signature_id = 2100001;
    r.signature = "EXFIL payment card number sent to an external network";
    r.cls = "payment_card";
    r.sample = control::mask_value("4111111111111111");
    r.sample_hmac = std::string(64, 'a');
    return r;
}

std::vector<std::string> check_alert(const control::AlertRecord& record) {
    return validate(load_schema("alert.schema.json"), json::parse(control::alert_to_json(record)));
}

TEST(ShippedSchemaTest, SchemasUseOnlySupportedKeywords) {
    for (const char* name : {"alert.schema.json", "summary.schema.json"}) {
        const json schema = load_schema(name);
        ASSERT_FALSE(schema.is_discarded()) << name;
        for (const std::string& e : validate(schema, json::object())) {
            EXPECT_THAT(e, ::testing::Not(HasSubstr("schema #"))) << name;
        }
    }
}

TEST(ShippedSchemaTest, TcpAlertWithLargestFlowIdMatches) {
    EXPECT_THAT(check_alert(tcp_record()), IsEmpty());
}

TEST(ShippedSchemaTest, Ipv6AlertWithFourVlanTagsAndAssetsMatches) {
    control::AlertRecord r = tcp_record();
    r.ip_version = 6;
    r.src = ip("2001:db8::1");
    r.dst = ip("::ffff:192.0.2.1");
    r.vlan = {0, 4095, 1, 2};
    r.vlan_count = 4;
    r.src_asset = "payroll-db";
    r.dst_asset = "partner";
    r.action = "would_drop";
    r.severity = detectors::Severity::Low;
    EXPECT_THAT(check_alert(r), IsEmpty());
}

TEST(ShippedSchemaTest, IcmpAlertWithTypeAndCodeMatches) {
    control::AlertRecord r = tcp_record();
    r.proto = 1;
    r.src_port = 8;
    r.dst_port = 0;
    EXPECT_THAT(check_alert(r), IsEmpty());
}

TEST(ShippedSchemaTest, OtherProtocolAlertWithoutPortsMatches) {
    control::AlertRecord r = tcp_record();
    r.proto = 132;
    r.action = "blocked";
    r.severity = detectors::Severity::Critical;
    EXPECT_THAT(check_alert(r), IsEmpty());
}

TEST(ShippedSchemaTest, AlertWithoutSampleMatches) {
    control::AlertRecord r = tcp_record();
    r.sample.clear();
    r.sample_hmac.clear();
    EXPECT_THAT(check_alert(r), IsEmpty());
}

TEST(ShippedSchemaTest, ShortValueMaskedCompletelyMatches) {
    control::AlertRecord r = tcp_record();
    r.sample = control::mask_value("1234");
    EXPECT_THAT(check_alert(r), IsEmpty());
}

// A value ending in '*' (a password, say) keeps its stars in the shown tail.
TEST(ShippedSchemaTest, SampleWithStarInItsTailMatches) {
    control::AlertRecord r = tcp_record();
    r.sample = control::mask_value("hunter2**");
    EXPECT_THAT(check_alert(r), IsEmpty());
}

TEST(ShippedSchemaTest, SampleShowingFiveCharactersIsRefused) {
    control::AlertRecord r = tcp_record();
    r.sample = "***********15715";
    EXPECT_THAT(check_alert(r), ElementsAre(HasSubstr("/exfil/sample: does not match pattern")));
}

TEST(ShippedSchemaTest, UnmaskedSampleIsRefused) {
    control::AlertRecord r = tcp_record();
    r.sample = "4111111111111111";
    EXPECT_THAT(check_alert(r), ElementsAre(HasSubstr("/exfil/sample: does not match pattern")));
}

TEST(ShippedSchemaTest, UnknownActionIsRefused) {
    control::AlertRecord r = tcp_record();
    r.action = "dropped";
    EXPECT_THAT(check_alert(r), ElementsAre(HasSubstr("/alert/action: value \"dropped\"")));
}

}  // namespace
}  // namespace exfiltap::testing
