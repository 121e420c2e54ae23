@0xf443eba6ae2333d5;
# Types shared by Hearth's Cap'n Proto RPC interfaces (ingest.capnp, query.capnp, admin.capnp).
# Ordinals are append-only: never renumber or reuse one. Errors travel as Cap'n Proto exceptions
# whose description is "<errc name> <errc number>: <message>" (docs/design/rpc.md).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("hearth::rpc");

struct Label {
  # One label of a series.
  name @0 :Text;   # label name, e.g. "service_name"
  value @1 :Text;  # label value
}

struct Selection {
  # What a read covers: a typed query and a time range, as /pyroscope/render takes them.
  query @0 :Text;
  # "<profile type>{selector}", e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="x"};
  # the selector may be omitted (all series of that type).
  startMs @1 :Int64;  # first millisecond of the range (Unix ms, inclusive)
  endMs @2 :Int64;    # last millisecond of the range (Unix ms, inclusive)
}
