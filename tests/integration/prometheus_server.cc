#include "tests/integration/prometheus_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/http_get.h"

namespace exfiltap::testing {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(250);
constexpr auto kStopGrace = std::chrono::seconds(10);
constexpr int kStartAttempts = 3;

/// A port nobody listens on right now: bind 127.0.0.1:0 and let it go. Another process may
/// take it before the server does, so start() retries.
Result<uint16_t> free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return make_error("socket failed");
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0
            && getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    close(fd);
    if (!ok) {
        return make_error("cannot bind 127.0.0.1:0");
    }
    return ntohs(address.sin_port);
}

bool loopback_target(const std::string& target) {
    const auto colon = target.rfind(':');
    if (colon == std::string::npos || colon + 1 == target.size()) {
        return false;
    }
    const std::string host = target.substr(0, colon);
    const std::string port = target.substr(colon + 1);
    return (host == "127.0.0.1" || host == "[::1]")
            && port.find_first_not_of("0123456789") == std::string::npos;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Runs `argv` with stdout and stderr into `log_path`. The child gets SIGTERM when the
/// thread that started it ends (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& arg : args) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
        _exit(127);
    }
    const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log_fd >= 0) {
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
    }
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
}

/// True once `pid` has exited (and is reaped).
bool reaped(pid_t pid) {
    int status = 0;
    return waitpid(pid, &status, WNOHANG) == pid;
}

/// An environment variable, or nullopt when unset.
std::optional<std::string> env(const char* name) {
    // Tests read the environment and never change it, so getenv races with nothing.
    const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
    return value != nullptr ? std::optional<std::string>(value) : std::nullopt;
}

}  // namespace

std::optional<std::string> find_prometheus_binary() {
    if (auto explicit_path = env("PROMETHEUS_BINARY")) {
        if (access(explicit_path->c_str(), X_OK) == 0) {
            return explicit_path;
        }
        return std::nullopt;
    }
    std::istringstream dirs(env("PATH").value_or("/usr/bin:/bin"));
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const std::string candidate = (dir.empty() ? "." : dir) + "/prometheus";
        if (access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    return std::nullopt;
}

bool shared_tools_required() {
    return env("EXFILTAP_REQUIRE_SHARED").value_or("") == "1";
}

Result<std::unique_ptr<PrometheusServer>> PrometheusServer::start(
        const std::string& target, std::chrono::milliseconds ready_timeout) {
    if (!loopback_target(target)) {
        return make_error("prometheus test server scrapes loopback targets only, got " + target);
    }
    const auto binary = find_prometheus_binary();
    if (!binary) {
        return make_error(
                "no prometheus binary (apt-get install prometheus, or PROMETHEUS_BINARY)");
    }
    std::string last_error;
    for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
        std::unique_ptr<PrometheusServer> server(new PrometheusServer());
        std::string pattern = (std::filesystem::temp_directory_path() / "exfiltap_prom_XXXXXX");
        if (mkdtemp(pattern.data()) == nullptr) {
            return make_error("mkdtemp failed for " + pattern);
        }
        server->dir_ = pattern;
        const auto port = free_port();
        if (!port) {
            return make_error(port.error());
        }
        server->port_ = port.value();

        const std::string config_path = server->dir_ + "/prometheus.yml";
        std::ofstream(config_path) << "global:\n"
                                      "  scrape_interval: 1s\n"
                                      "  scrape_timeout: 1s\n"
                                      "  evaluation_interval: 1s\n"
                                      "scrape_configs:\n"
                                      "  - job_name: exfiltap\n"
                                      "    static_configs:\n"
                                      "      - targets: ['"
                                   << target << "']\n";
        const std::string listen = "127.0.0.1:" + std::to_string(server->port_);
        server->pid_ = spawn({*binary, "--config.file=" + config_path,
                                     "--storage.tsdb.path=" + server->dir_ + "/data",
                                     "--storage.tsdb.retention.time=1h",
                                     "--web.listen-address=" + listen, "--log.level=warn"},
                server->dir_ + "/prometheus.log");
        if (server->pid_ < 0) {
            return make_error("fork failed");
        }

        const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
        bool exited = false;
        while (std::chrono::steady_clock::now() < deadline) {
            if (reaped(server->pid_)) {
                server->pid_ = -1;
                exited = true;
                break;
            }
            const auto ready = http_get("127.0.0.1", server->port_, "/-/ready", kPoll * 4);
            if (ready.ok() && ready->status == 200) {
                return server;
            }
            std::this_thread::sleep_for(kPoll);
        }
        last_error = std::string(exited ? "prometheus exited" : "prometheus not ready in time")
                + " on " + listen + "; its log:\n" + server->log();
        if (!exited) {
            break;  // it runs but never got ready: retrying would only repeat that
        }
        // The destructor removes the folder; the next attempt takes another port.
    }
    return make_error(last_error);
}

PrometheusServer::~PrometheusServer() {
    stop();
    if (!dir_.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
}

void PrometheusServer::stop() {
    if (pid_ <= 0) {
        return;
    }
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
    while (std::chrono::steady_clock::now() < deadline) {
        if (reaped(pid_)) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
}

Result<nlohmann::json> PrometheusServer::query(const std::string& promql) const {
    const auto response = http_get("127.0.0.1", port_, "/api/v1/query?query=" + url_encode(promql));
    if (!response) {
        return make_error("query " + promql + ": " + response.error());
    }
    const auto body = nlohmann::json::parse(response->body, nullptr, false);
    if (body.is_discarded() || body.value("status", "") != "success") {
        return make_error("query " + promql + ": HTTP " + std::to_string(response->status) + " "
                + response->body.substr(0, 300));
    }
    return body["data"]["result"];
}

Result<double> PrometheusServer::query_value(const std::string& promql) const {
    const auto result = query(promql);
    if (!result) {
        return make_error(result.error());
    }
    const nlohmann::json& samples = result.value();
    if (!samples.is_array() || samples.empty()) {
        return make_error("query " + promql + ": no samples");
    }
    // An instant vector sample's value is [time, "text"].
    const auto& value = samples[0]["value"];
    if (!value.is_array() || value.size() != 2 || !value[1].is_string()) {
        return make_error("query " + promql + ": unexpected sample " + value.dump());
    }
    return std::stod(value[1].get<std::string>());
}

Result<double> PrometheusServer::wait_for_value(const std::string& promql,
        const std::function<bool(double)>& accept, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last = "no answer";
    for (;;) {
        const auto value = query_value(promql);
        if (value.ok() && accept(value.value())) {
            return value.value();
        }
        last = value.ok() ? "last value " + std::to_string(value.value()) : value.error();
        if (std::chrono::steady_clock::now() >= deadline) {
            std::string message = "waited " + std::to_string(timeout.count()) + " ms for ";
            message += promql;
            message += ": ";
            message += last;
            return make_error(message);
        }
        std::this_thread::sleep_for(kPoll);
    }
}

std::string PrometheusServer::log() const {
    return read_file(dir_ + "/prometheus.log");
}

}  // namespace exfiltap::testing
