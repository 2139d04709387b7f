#include "dataplane/ctrl_thread.h"

#include <pthread.h>

#include <cstring>
#include <memory>

#include <rte_lcore.h>

namespace exfiltap::dataplane {

namespace {

void* thread_entry(void* arg) {
    std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(arg));
    (*body)();
    return nullptr;
}

}  // namespace

Result<std::function<void()>> spawn_ctrl_thread(
        const std::string& name, std::function<void()> body) {
    auto* heap = new std::function<void()>(std::move(body));
    pthread_t thread{};
    // Thread names are at most 15 characters.
    const std::string short_name = name.substr(0, 15);
    const int rc = rte_ctrl_thread_create(&thread, short_name.c_str(), nullptr, thread_entry, heap);
    if (rc != 0) {
        delete heap;
        return make_error("cannot start control thread " + name + ": " + strerror(rc));
    }
    return std::function<void()>([thread]() { pthread_join(thread, nullptr); });
}

Status run_in_ctrl_thread(const std::string& name, const std::function<void()>& body) {
    auto joiner = spawn_ctrl_thread(name, [&body]() { body(); });
    if (!joiner) {
        return make_error(joiner.error());
    }
    (*joiner)();
    return Ok{};
}

}  // namespace exfiltap::dataplane
