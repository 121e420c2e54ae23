@0x9aecb7dca77f13b1;
# The bootstrap capability of Hearth's RPC port: a session scoped to a tenant and credentials.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("hearth::rpc");
using Ingest = import "ingest.capnp".Ingest;
using Query = import "query.capnp".Query;
using Admin = import "admin.capnp".Admin;

interface Hearth {
  # What a client gets on connect: nothing but login.
  login @0 (token :Text, tenant :Text) -> (ingest :Ingest, query :Query, admin :Admin);
  # Checks `token` against [auth] (a bearer token or "user:password"; anything when auth is off)
  # and `tenant` as X-Scope-OrgID is checked over HTTP (queries may name "a|b"); without
  # server.multitenancy the tenant is ignored ("anonymous"). Fails with unauthenticated.
}
