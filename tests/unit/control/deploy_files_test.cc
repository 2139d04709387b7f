// deploy/ checked against the exporter: the Grafana dashboard and the alerting rules use only
// metric names the exporter declares (control/metrics.h kMetricNames), so renaming a metric
// without updating them fails here.
#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/metrics.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace exfiltap::control {
namespace {

const std::string kDashboard =
        std::string(EXFILTAP_SOURCE_ROOT) + "/deploy/grafana/exfiltap-dashboard.json";
const std::string kRules =
        std::string(EXFILTAP_SOURCE_ROOT) + "/deploy/prometheus/exfiltap-rules.yml";

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << path;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Every exfiltap_* name a PromQL expression mentions.
std::set<std::string> metric_names_in(const std::string& expr) {
    static const std::regex kName("exfiltap_[a-z0-9_]+");
    std::set<std::string> names;
    for (auto it = std::sregex_iterator(expr.begin(), expr.end(), kName);
            it != std::sregex_iterator(); ++it) {
        names.insert(it->str());
    }
    return names;
}

bool declared(const std::string& name) {
    return std::find(kMetricNames.begin(), kMetricNames.end(), name) != kMetricNames.end();
}

/// The PromQL strings of a dashboard: panel targets and template variable queries.
void collect_queries(const nlohmann::json& node, std::vector<std::string>& out) {
    if (node.is_object()) {
        for (const auto& [key, value] : node.items()) {
            if ((key == "expr" || key == "definition") && value.is_string()) {
                out.push_back(value.get<std::string>());
            } else {
                collect_queries(value, out);
            }
        }
    } else if (node.is_array()) {
        for (const auto& item : node) {
            collect_queries(item, out);
        }
    }
}

nlohmann::json load_dashboard() {
    return nlohmann::json::parse(read_text(kDashboard), nullptr, false);
}

TEST(DeployDashboardTest, UsesOnlyExportedMetricNames) {
    const auto dashboard = load_dashboard();
    ASSERT_FALSE(dashboard.is_discarded()) << kDashboard << " is not valid JSON";
    std::vector<std::string> queries;
    collect_queries(dashboard, queries);
    ASSERT_GE(queries.size(), 20U);
    for (const auto& query : queries) {
        for (const auto& name : metric_names_in(query)) {
            EXPECT_TRUE(declared(name)) << name << " in: " << query;
        }
    }
}

TEST(DeployDashboardTest, ShowsEveryExportedMetric) {
    std::vector<std::string> queries;
    collect_queries(load_dashboard(), queries);
    std::set<std::string> used;
    for (const auto& query : queries) {
        const auto names = metric_names_in(query);
        used.insert(names.begin(), names.end());
    }
    for (const auto name : kMetricNames) {
        EXPECT_EQ(used.count(std::string(name)), 1U) << "no panel shows " << name;
    }
}

void expect_panel_well_formed(const nlohmann::json& panel) {
    const auto title = panel.value("title", "");
    if (panel.at("type") == "row") {
        return;
    }
    EXPECT_EQ(panel.at("datasource").at("uid"), "${datasource}") << title;
    const auto targets = panel.value("targets", nlohmann::json::array());
    EXPECT_FALSE(targets.empty()) << title;
    std::set<std::string> ref_ids;
    for (const auto& target : targets) {
        EXPECT_FALSE(target.value("expr", "").empty()) << title;
        EXPECT_TRUE(ref_ids.insert(target.value("refId", "")).second) << title;
    }
}

TEST(DeployDashboardTest, PanelsAreWellFormed) {
    const auto dashboard = load_dashboard();
    ASSERT_TRUE(dashboard.contains("panels"));
    EXPECT_EQ(dashboard.value("uid", ""), "exfiltap-overview");
    std::set<int> ids;
    for (const auto& panel : dashboard["panels"]) {
        EXPECT_TRUE(ids.insert(panel.at("id").get<int>()).second) << "duplicate panel id";
        const auto& grid = panel.at("gridPos");
        EXPECT_LE(grid.at("x").get<int>() + grid.at("w").get<int>(), 24) << panel.at("title");
        expect_panel_well_formed(panel);
    }
}

void expect_rule_well_formed(const YAML::Node& rule) {
    const auto alert = rule["alert"].as<std::string>();
    for (const auto& name : metric_names_in(rule["expr"].as<std::string>())) {
        EXPECT_TRUE(declared(name)) << name << " in " << alert;
    }
    const auto severity = rule["labels"]["severity"].as<std::string>("");
    EXPECT_TRUE(severity == "critical" || severity == "warning" || severity == "info")
            << alert << ": severity '" << severity << "'";
    EXPECT_FALSE(rule["annotations"]["summary"].as<std::string>("").empty()) << alert;
}

TEST(DeployRulesTest, AlertsUseExportedNamesAndCarrySeverityAndSummary) {
    const YAML::Node rules = YAML::LoadFile(kRules);
    std::set<std::string> names;
    for (const auto& group : rules["groups"]) {
        for (const auto& rule : group["rules"]) {
            EXPECT_TRUE(names.insert(rule["alert"].as<std::string>()).second)
                    << "duplicate alert " << rule["alert"].as<std::string>();
            expect_rule_well_formed(rule);
        }
    }
    EXPECT_EQ(names.size(), 12U);
}

}  // namespace
}  // namespace exfiltap::control
