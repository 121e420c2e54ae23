#include "cluster/kj_server.hpp"

#include <cstdio>
#include <future>

namespace hearth {

result<uint16_t> kj_server_thread::start(std::string what, std::string host, uint16_t port,
                                         serve_fn serve) {
  std::promise<result<uint16_t>> bound;
  auto fut = bound.get_future();
  thread_ = std::thread([this, &bound, what, host, port, serve = std::move(serve)] {
    try {
      auto io = kj::setupAsyncIo();
      auto addr = io.provider->getNetwork().parseAddress(kj::StringPtr(host.c_str()), port).wait(io.waitScope);
      auto listener = addr->listen();
      auto stop = kj::newPromiseAndFulfiller<void>();
      stop_fulfiller_ = kj::mv(stop.fulfiller);
      executor_ = &kj::getCurrentThreadExecutor();
      bound.set_value(static_cast<uint16_t>(listener->getPort()));
      serve(io, *listener, kj::mv(stop.promise));
    } catch (const kj::Exception& e) {
      // Before the port is reported this is a bind failure; after it, a fatal loop error.
      try {
        bound.set_value(error{errc::unavailable, what + " listener on " + host + ":" +
                                                     std::to_string(port) + ": " +
                                                     e.getDescription().cStr()});
      } catch (const std::future_error&) {
        std::fprintf(stderr, "hearth: %s event loop failed: %s\n", what.c_str(),
                     e.getDescription().cStr());
      }
    }
  });
  auto r = fut.get();
  if (!r) {
    thread_.join();
    return r;
  }
  running_ = true;
  return r;
}

void kj_server_thread::stop() {
  if (!running_) return;
  running_ = false;
  executor_->executeSync([this] { stop_fulfiller_->fulfill(); });
  thread_.join();
}

}  // namespace hearth
