#include "control/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace exfiltap::control {

namespace {

std::string errno_message(int err) {
    return std::strerror(err);  // NOLINT(concurrency-mt-unsafe): control thread only
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

}  // namespace

Status write_state_file(const std::string& dir, const std::string& name, std::string_view data) {
    const std::string path = dir + "/" + name;
    const std::string temp = path + ".tmp";
    const int fd =
            ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return make_error(temp + ": cannot create: " + errno_message(errno));
    }
    const bool ok = fchmod(fd, 0600) == 0 && write_all(fd, data) && fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(temp.c_str());
        return make_error(temp + ": cannot write: " + errno_message(saved));
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        return make_error(path + ": cannot rename into place: " + errno_message(err));
    }
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        return make_error(dir + ": cannot open: " + errno_message(errno));
    }
    const bool synced = fsync(dir_fd) == 0;
    const int err = errno;
    ::close(dir_fd);
    if (!synced) {
        return make_error(dir + ": cannot fsync: " + errno_message(err));
    }
    return Ok{};
}

Result<std::optional<std::string>> read_state_file(
        const std::string& dir, const std::string& name) {
    const std::string path = dir + "/" + name;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
            return std::optional<std::string>();
        }
        return make_error(path + ": cannot read: " + errno_message(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        return make_error(path + ": cannot read");
    }
    return std::optional<std::string>(text.str());
}

Result<std::string> move_state_file_aside(const std::string& dir, const std::string& name) {
    const std::string path = dir + "/" + name;
    const std::string aside = path + ".corrupt-" + std::to_string(std::time(nullptr));
    if (::rename(path.c_str(), aside.c_str()) != 0) {
        return make_error(path + ": cannot move aside: " + errno_message(errno));
    }
    return aside;
}

}  // namespace exfiltap::control
