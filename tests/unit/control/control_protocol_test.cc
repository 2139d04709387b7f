#include "control/control_protocol.h"

#include <string>

#include <gtest/gtest.h>

namespace exfiltap::control {
namespace {

Request parse_ok(const std::string& line) {
    auto request = parse_request(line);
    EXPECT_TRUE(request.ok()) << line << " -> " << (request.ok() ? "" : request.error());
    return request.ok() ? *request : Request{};
}

std::string parse_error(const std::string& line) {
    auto request = parse_request(line);
    EXPECT_FALSE(request.ok()) << line;
    return request.ok() ? "" : request.error();
}

TEST(ControlProtocolTest, BlockWithAllArguments) {
    const Request r = parse_ok(
            R"({"command":"block","arguments":{"address":"192.0.2.7","ttl_s":600,"reason":"exfil to paste site"}})");
    EXPECT_EQ(r.command, Command::Block);
    EXPECT_EQ(r.address.to_string(), "192.0.2.7/32");
    ASSERT_TRUE(r.ttl_s.has_value());
    EXPECT_EQ(*r.ttl_s, 600U);
    EXPECT_EQ(r.reason, "exfil to paste site");
}

TEST(ControlProtocolTest, BlockPrefixWithoutTtl) {
    const Request r = parse_ok(R"({"command":"block","arguments":{"address":"2001:db8::/32"}})");
    EXPECT_EQ(r.address.ip_version, 6);
    EXPECT_EQ(r.address.length, 32);
    EXPECT_FALSE(r.ttl_s.has_value());
    EXPECT_EQ(r.reason, "");
}

TEST(ControlProtocolTest, BlockRefusesHostBits) {
    const std::string error =
            parse_error(R"({"command":"block","arguments":{"address":"10.1.2.3/8"}})");
    EXPECT_EQ(error.rfind("block: bad address: ", 0), 0U) << error;
    EXPECT_NE(error.find("10.0.0.0/8"), std::string::npos) << error;
}

TEST(ControlProtocolTest, BlockRefusesBadAddress) {
    EXPECT_EQ(parse_error(R"({"command":"block","arguments":{"address":"10.0.0.256"}})"),
            "block: bad address: '10.0.0.256' is not an IPv4 or IPv6 address or prefix");
}

TEST(ControlProtocolTest, BlockRefusesOverlongAddress) {
    const std::string address(100, '1');
    EXPECT_EQ(parse_error(R"({"command":"block","arguments":{"address":")" + address + "\"}}"),
            "block: argument 'address' is too long for an address or prefix (100 bytes)");
}

TEST(ControlProtocolTest, BlockNeedsAddress) {
    EXPECT_EQ(parse_error(R"({"command":"block","arguments":{"ttl_s":5}})"),
            "block: missing argument 'address'");
    EXPECT_EQ(parse_error(R"({"command":"block"})"), "block: missing argument 'address'");
}

TEST(ControlProtocolTest, BlockAddressMustBeString) {
    EXPECT_EQ(parse_error(R"({"command":"block","arguments":{"address":167772161}})"),
            "block: argument 'address' must be a string, got 167772161");
    EXPECT_EQ(parse_error(R"({"command":"block","arguments":{"address":["10.0.0.1"]}})"),
            "block: argument 'address' must be a string, got an array");
}

TEST(ControlProtocolTest, BlockTtlMustBePositiveInteger) {
    const std::string head = R"({"command":"block","arguments":{"address":"10.0.0.1","ttl_s":)";
    EXPECT_EQ(
            parse_error(head + "-5}}"), "block: argument 'ttl_s' must be in 1..4294967295, got -5");
    EXPECT_EQ(parse_error(head + "0}}"), "block: argument 'ttl_s' must be in 1..4294967295, got 0");
    EXPECT_EQ(parse_error(head + "4294967296}}"),
            "block: argument 'ttl_s' must be in 1..4294967295, got 4294967296");
    EXPECT_EQ(parse_error(head + "1.5}}"),
            "block: argument 'ttl_s' must be an integer 1..4294967295, got 1.5");
    EXPECT_EQ(parse_error(head + "\"60\"}}"),
            "block: argument 'ttl_s' must be an integer 1..4294967295, got a string");
}

TEST(ControlProtocolTest, ReasonRefusesControlCharacters) {
    EXPECT_EQ(
            parse_error(
                    R"({"command":"block","arguments":{"address":"10.0.0.1","reason":"a\nforged line"}})"),
            "block: argument 'reason' must not contain control characters");
}

TEST(ControlProtocolTest, ReasonHasLengthLimit) {
    const std::string reason(kMaxReasonBytes + 1, 'x');
    EXPECT_EQ(parse_error(R"({"command":"allow","arguments":{"address":"10.0.0.1","reason":")"
                      + reason + "\"}}"),
            "allow: argument 'reason' is longer than 256 bytes");
}

TEST(ControlProtocolTest, BlockRefusesUnknownArgument) {
    EXPECT_EQ(parse_error(R"({"command":"block","arguments":{"address":"10.0.0.1","ttl":5}})"),
            "block: unknown argument 'ttl' (expected address, ttl_s, reason)");
}

TEST(ControlProtocolTest, UnblockTakesAddressOnly) {
    const Request r = parse_ok(R"({"command":"unblock","arguments":{"address":"10.0.0.0/24"}})");
    EXPECT_EQ(r.command, Command::Unblock);
    EXPECT_EQ(r.address.to_string(), "10.0.0.0/24");
    EXPECT_EQ(
            parse_error(R"({"command":"unblock","arguments":{"address":"10.0.0.1","reason":"x"}})"),
            "unblock: unknown argument 'reason' (expected address)");
}

TEST(ControlProtocolTest, AllowAndUnallow) {
    const Request allow =
            parse_ok(R"({"command":"allow","arguments":{"address":"fd00::1","reason":"backup"}})");
    EXPECT_EQ(allow.command, Command::Allow);
    EXPECT_EQ(allow.address.to_string(), "fd00::1/128");
    EXPECT_EQ(allow.reason, "backup");
    const Request unallow = parse_ok(R"({"command":"unallow","arguments":{"address":"fd00::1"}})");
    EXPECT_EQ(unallow.command, Command::Unallow);
    EXPECT_EQ(parse_error(R"({"command":"allow","arguments":{"address":"10.0.0.1","ttl_s":5}})"),
            "allow: unknown argument 'ttl_s' (expected address, reason)");
    EXPECT_EQ(parse_error(R"({"command":"unallow","arguments":{}})"),
            "unallow: missing argument 'address'");
}

TEST(ControlProtocolTest, ListKinds) {
    EXPECT_EQ(parse_ok(R"({"command":"list"})").kind, ListKind::All);
    EXPECT_EQ(parse_ok(R"({"command":"list","arguments":{"kind":"block"}})").kind, ListKind::Block);
    EXPECT_EQ(parse_ok(R"({"command":"list","arguments":{"kind":"allow"}})").kind, ListKind::Allow);
    EXPECT_EQ(parse_ok(R"({"command":"list","arguments":{"kind":"all"}})").kind, ListKind::All);
    EXPECT_EQ(parse_error(R"({"command":"list","arguments":{"kind":"blocks"}})"),
            "list: argument 'kind' must be one of block, allow, all, got 'blocks'");
    EXPECT_EQ(parse_error(R"({"command":"list","arguments":{"kind":1}})"),
            "list: argument 'kind' must be one of block, allow, all, got 1");
}

TEST(ControlProtocolTest, FlowsTop) {
    EXPECT_EQ(parse_ok(R"({"command":"flows"})").top, kDefaultFlowsTop);
    EXPECT_EQ(parse_ok(R"({"command":"flows","arguments":{"top":3}})").top, 3U);
    EXPECT_EQ(parse_error(R"({"command":"flows","arguments":{"top":0}})"),
            "flows: argument 'top' must be in 1..1000, got 0");
    EXPECT_EQ(parse_error(R"({"command":"flows","arguments":{"top":1001}})"),
            "flows: argument 'top' must be in 1..1000, got 1001");
    EXPECT_EQ(parse_error(R"({"command":"flows","arguments":{"top":true}})"),
            "flows: argument 'top' must be an integer 1..1000, got true");
}

TEST(ControlProtocolTest, AlertsCountAndFollow) {
    const Request plain = parse_ok(R"({"command":"alerts"})");
    EXPECT_EQ(plain.count, kDefaultAlertsCount);
    EXPECT_FALSE(plain.follow);
    const Request follow =
            parse_ok(R"({"command":"alerts","arguments":{"count":0,"follow":true}})");
    EXPECT_EQ(follow.count, 0U);
    EXPECT_TRUE(follow.follow);
    EXPECT_EQ(parse_error(R"({"command":"alerts","arguments":{"follow":"yes"}})"),
            "alerts: argument 'follow' must be true or false, got a string");
    EXPECT_EQ(parse_error(R"({"command":"alerts","arguments":{"count":10001}})"),
            "alerts: argument 'count' must be in 0..10000, got 10001");
}

TEST(ControlProtocolTest, IncidentsId) {
    EXPECT_EQ(parse_ok(R"({"command":"incidents"})").incident_id, "");
    EXPECT_EQ(parse_ok(R"({"command":"incidents","arguments":{"id":"inc-2026.12:7"}})").incident_id,
            "inc-2026.12:7");
    const std::string expected =
            "incidents: argument 'id' must be 1..64 of letters, digits and - _ . :";
    EXPECT_EQ(parse_error(R"({"command":"incidents","arguments":{"id":""}})"), expected);
    EXPECT_EQ(parse_error(R"({"command":"incidents","arguments":{"id":"a b"}})"), expected);
    EXPECT_EQ(parse_error(R"({"command":"incidents","arguments":{"id":7}})"),
            "incidents: argument 'id' must be a string, got 7");
}

TEST(ControlProtocolTest, EvidenceFlowIdsAndId) {
    const Request r = parse_ok(
            R"({"command":"evidence","arguments":{"flow_ids":[12,4503599627370495],"id":"inc-3"}})");
    EXPECT_EQ(r.command, Command::Evidence);
    EXPECT_EQ(r.flow_ids, (std::vector<uint64_t>{12, 4503599627370495ULL}));
    EXPECT_EQ(r.incident_id, "inc-3");
    EXPECT_EQ(parse_ok(request_to_json(r).dump()).flow_ids, r.flow_ids);
}

TEST(ControlProtocolTest, EvidenceRefusesBadFlowIds) {
    EXPECT_EQ(parse_error(R"({"command":"evidence"})"),
            "evidence: argument 'flow_ids' is required: an array of 1..256 flow ids (integers)");
    const std::string expected =
            "evidence: argument 'flow_ids' must be an array of 1..256 flow ids (integers), got ";
    EXPECT_EQ(parse_error(R"({"command":"evidence","arguments":{"flow_ids":[]}})"),
            expected + "an array");
    EXPECT_EQ(parse_error(R"({"command":"evidence","arguments":{"flow_ids":[-1]}})"),
            expected + "an array");
    EXPECT_EQ(parse_error(R"({"command":"evidence","arguments":{"flow_ids":"12"}})"),
            expected + "a string");
    std::string many = R"({"command":"evidence","arguments":{"flow_ids":[1)";
    for (int i = 0; i < 256; ++i) {
        many += ",1";
    }
    EXPECT_EQ(parse_error(many + "]}}"), expected + "an array");
}

TEST(ControlProtocolTest, CommandsWithoutArguments) {
    for (const auto* name : {"stats", "reload", "reopen-log-files", "version", "command-list"}) {
        const std::string line = std::string(R"({"command":")") + name + "\"}";
        const Request r = parse_ok(line);
        EXPECT_EQ(command_name(r.command), name);
        EXPECT_TRUE(
                parse_request(std::string(R"({"command":")") + name + R"(","arguments":{}})").ok());
        EXPECT_EQ(parse_error(std::string(R"({"command":")") + name + R"(","arguments":{"x":1}})"),
                std::string(name) + ": takes no arguments, got 'x'");
    }
}

TEST(ControlProtocolTest, NullArgumentsMeanNone) {
    EXPECT_EQ(parse_ok(R"({"command":"stats","arguments":null})").command, Command::Stats);
}

TEST(ControlProtocolTest, ArgumentsMustBeObject) {
    EXPECT_EQ(parse_error(R"({"command":"stats","arguments":[1]})"),
            "stats: 'arguments' must be an object, got an array");
}

TEST(ControlProtocolTest, MalformedJson) {
    const std::string error = parse_error(R"({"command":"stats")");
    EXPECT_EQ(error.rfind("malformed JSON: parse error at line 1, column 19", 0), 0U) << error;
    EXPECT_EQ(parse_error("").rfind("malformed JSON: ", 0), 0U);
}

TEST(ControlProtocolTest, InvalidUtf8IsMalformed) {
    const std::string error = parse_error("{\"command\":\"st\xff\"}");
    EXPECT_EQ(error.rfind("malformed JSON: ", 0), 0U) << error;
}

TEST(ControlProtocolTest, NonObjectRequest) {
    EXPECT_EQ(parse_error("[1,2]"), "request must be a JSON object, got an array");
    EXPECT_EQ(parse_error("\"block\""), "request must be a JSON object, got a string");
    EXPECT_EQ(parse_error("42"), "request must be a JSON object, got 42");
}

TEST(ControlProtocolTest, MissingCommand) {
    EXPECT_EQ(parse_error(R"({"arguments":{}})"), "missing key 'command'");
}

TEST(ControlProtocolTest, CommandMustBeString) {
    EXPECT_EQ(parse_error(R"({"command":1})"), "'command' must be a string, got 1");
}

TEST(ControlProtocolTest, UnknownCommand) {
    EXPECT_EQ(parse_error(R"({"command":"shutdown"})"),
            "unknown command 'shutdown' (see command-list)");
}

TEST(ControlProtocolTest, UnknownTopLevelKey) {
    EXPECT_EQ(parse_error(R"({"command":"stats","args":{}})"),
            "unknown key 'args' (expected command, arguments)");
}

TEST(ControlProtocolTest, DuplicateKeysRefused) {
    EXPECT_EQ(parse_error(R"({"command":"list","command":"block"})"), "duplicate key 'command'");
    EXPECT_EQ(
            parse_error(
                    R"({"command":"block","arguments":{"address":"10.0.0.1","address":"10.0.0.2"}})"),
            "duplicate key 'address'");
}

TEST(ControlProtocolTest, DeepNestingRefused) {
    std::string deep = R"({"command":"stats","arguments":{"x":)";
    for (int i = 0; i < 20; ++i) {
        deep += "[";
    }
    for (int i = 0; i < 20; ++i) {
        deep += "]";
    }
    deep += "}}";
    EXPECT_EQ(parse_error(deep), "request nests deeper than 8 levels");
}

TEST(ControlProtocolTest, CommandReportedWhenArgumentsRefused) {
    std::optional<Command> command;
    EXPECT_FALSE(parse_request(R"({"command":"flows","arguments":{"top":0}})", &command).ok());
    ASSERT_TRUE(command.has_value());
    EXPECT_EQ(*command, Command::Flows);
}

TEST(ControlProtocolTest, RequestRoundTrips) {
    const Request block = parse_ok(
            R"({"command":"block","arguments":{"address":"10.9.0.0/16","ttl_s":30,"reason":"r"}})");
    const Request again = parse_ok(request_to_json(block).dump());
    EXPECT_EQ(again.address.to_string(), "10.9.0.0/16");
    EXPECT_EQ(again.ttl_s.value_or(0), 30U);
    EXPECT_EQ(again.reason, "r");
    const Request alerts =
            parse_ok(R"({"command":"alerts","arguments":{"count":5,"follow":true}})");
    EXPECT_EQ(request_to_json(alerts).dump(),
            R"({"arguments":{"count":5,"follow":true},"command":"alerts"})");
}

TEST(ControlProtocolTest, ReplyLines) {
    EXPECT_EQ(reply_line(Reply::success("done")), "{\"return\":\"OK\",\"message\":\"done\"}\n");
    EXPECT_EQ(reply_line(Reply::failure("rate limit")),
            "{\"return\":\"NOK\",\"message\":\"rate limit\"}\n");
    EXPECT_EQ(reply_line(Reply::success(nlohmann::json{{"a", 1}})),
            "{\"return\":\"OK\",\"message\":{\"a\":1}}\n");
}

TEST(ControlProtocolTest, ReplyReplacesInvalidUtf8) {
    const std::string line = reply_line(Reply::failure("bad \xff byte"));
    EXPECT_EQ(line, "{\"return\":\"NOK\",\"message\":\"bad \xEF\xBF\xBD byte\"}\n");
}

TEST(ControlProtocolTest, CommandListNamesEveryCommand) {
    const auto message = command_list_message();
    EXPECT_EQ(message["count"], kCommandCount);
    ASSERT_EQ(message["commands"].size(), kCommandCount);
    EXPECT_EQ(message["commands"][11], "reopen-log-files");
    for (const auto& name : message["commands"]) {
        // The commands whose arguments are required.
        EXPECT_TRUE(parse_request(R"({"command":")" + name.get<std::string>() + "\"}").ok()
                || name == "block" || name == "unblock" || name == "allow" || name == "unallow"
                || name == "evidence");
    }
}

}  // namespace
}  // namespace exfiltap::control

namespace exfiltap::control {
namespace {

// Found by trying to break the daemon: a number beyond double's range made the JSON library
// throw out_of_range instead of parse_error, which escaped and left the connection dead.
TEST(ControlProtocolRegression, NumberOverflowIsARefusalNotAnException) {
    auto request = parse_request(R"({"command":"version","x":1e400})");
    ASSERT_FALSE(request);
    EXPECT_NE(request.error().find("malformed JSON"), std::string::npos) << request.error();
    auto nested = parse_request(
            R"({"command":"block","arguments":{"address":"10.0.0.1","ttl_s":1e999}})");
    EXPECT_FALSE(nested);
}

}  // namespace
}  // namespace exfiltap::control
