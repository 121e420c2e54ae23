#pragma once
// One kj event loop on its own thread, serving a listener until stopped: the lifecycle the HTTP
// gateway and the RPC server share. start() binds host:port on the new thread and returns the
// bound port (or why it could not bind); stop() ends the loop from outside and joins the thread.

#include <kj/async-io.h>

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "format/error.hpp"

namespace hearth {

class kj_server_thread {
 public:
  /// Runs on the server thread once the listener is bound: serves it until `stop` resolves,
  /// e.g. `server.listen(listener).exclusiveJoin(kj::mv(stop)).wait(io.waitScope)`.
  using serve_fn = std::function<void(kj::AsyncIoContext& io, kj::ConnectionReceiver& listener,
                                      kj::Promise<void> stop)>;

  kj_server_thread() = default;
  ~kj_server_thread() { stop(); }
  kj_server_thread(const kj_server_thread&) = delete;
  kj_server_thread& operator=(const kj_server_thread&) = delete;

  /// `what` names the server in errors ("HTTP", "RPC"). Call once.
  result<uint16_t> start(std::string what, std::string host, uint16_t port, serve_fn serve);
  /// Stops serving (open connections are dropped) and joins. No-op when not running.
  void stop();

 private:
  std::thread thread_;
  const kj::Executor* executor_ = nullptr;
  kj::Own<kj::PromiseFulfiller<void>> stop_fulfiller_;
  bool running_ = false;
};

}  // namespace hearth
