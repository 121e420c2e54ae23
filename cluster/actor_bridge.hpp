#pragma once
// The kj -> CAF -> kj bridge shared by the HTTP gateway and the RPC server: a request to an actor
// made from a kj event loop, answered on that loop. The CAF side runs in a short-lived actor; the
// reply crosses threads through a kj cross-thread fulfiller (kj forbids touching kj objects from
// CAF threads otherwise). A dropped fulfiller or a CAF error (timeout, dead actor) rejects the
// promise, so a dead actor cannot hang the caller.

#include <kj/async.h>

#include <caf/all.hpp>
#include <chrono>
#include <memory>
#include <utility>

namespace hearth::bridge {

/// Sends `xs...` to `h` and resolves with `fn(reply)`, `fn` applied on the CAF side: encoding a
/// large answer then costs the event loop nothing. Must be called on a kj event loop thread.
template <class Reply, class Out, class Handle, class Fn, class... Ts>
kj::Promise<Out> ask_map(caf::actor_system& sys, std::chrono::seconds timeout, Handle h, Fn fn,
                         Ts... xs) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Out>();
  auto f = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Out>>>(kj::mv(paf.fulfiller));
  auto msg = caf::make_message(std::move(xs)...);
  sys.spawn([h, f, timeout, msg, fn = std::move(fn)](caf::event_based_actor* self) mutable {
    self->request(caf::actor_cast<caf::actor>(h), timeout, msg)
        .then([f, fn = std::move(fn)](Reply& r) mutable { (*f)->fulfill(fn(r)); },
              [f, self](caf::error& e) {
                (*f)->reject(KJ_EXCEPTION(FAILED, self->system().render(e).c_str()));
              });
  });
  return kj::mv(paf.promise);
}

/// As ask_map, resolving with the reply itself.
template <class Reply, class Handle, class... Ts>
kj::Promise<Reply> ask(caf::actor_system& sys, std::chrono::seconds timeout, Handle h, Ts... xs) {
  return ask_map<Reply, Reply>(sys, timeout, h, [](Reply& r) { return std::move(r); },
                               std::move(xs)...);
}

}  // namespace hearth::bridge
