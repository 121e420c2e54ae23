@0xebb31a1a9fa13a04;
# Ingest: push one profile as bytes. It takes the path of POST /ingest (the same decoders, limits
# and per-tenant rate limits), so a profile pushed here and one pushed over HTTP are stored alike.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("hearth::rpc");
using Common = import "common.capnp";

enum Format {
  # How `Ingest.push` data is encoded.
  pprof @0;   # a pprof protobuf, gzipped or not
  folded @1;  # folded stacks text: "a;b;c 12" per line
  jfr @2;     # a Java Flight Recorder file (the Pyroscope Java agent's format)
  lines @3;   # one stack per line, root last (Pyroscope's "lines" format)
}

struct SampleTypeConfig {
  # pprof only: the display name of one sample type (the Go SDK's sample_type_config part).
  sampleType @0 :Text;   # the sample type as named in the profile, e.g. "inuse_space"
  displayName @1 :Text;  # the name Hearth stores it under
}

struct PushRequest {
  # One profile and how to label it.
  serviceName @0 :Text;
  # The application name (label service_name); [A-Za-z0-9_.-/]. Required.
  labels @1 :List(Common.Label);
  # More labels of the series; names [A-Za-z0-9_.], values without ',' '}' or '{'.
  format @2 :Format;          # the encoding of `data`
  data @3 :Data;              # the profile's bytes (the server's body size limit applies)
  fromNs @4 :Int64;           # start of the profile (Unix ns); 0 = from the profile or now
  untilNs @5 :Int64;          # end of the profile (Unix ns); 0 = unknown
  sampleRate @6 :UInt32;      # folded/lines/jfr: samples per second (0 = 100)
  spyName @7 :Text;           # the profiler that made it (label pyroscope_spy); "" = unknown
  sampleTypeConfig @8 :List(SampleTypeConfig);  # pprof only: renamed sample types
  kind @9 :Text;
  # folded/lines only: what the values measure, as the legacy app-name suffix ("cpu", "wall",
  # "alloc_space", "inuse_space", "goroutines", "mutex_count", ...); "" = cpu.
}

struct PushResult {
  # What the server stored.
  profiles @0 :UInt64;  # profiles decoded
  series @1 :UInt64;    # series profiles stored
  samples @2 :UInt64;   # (stack, value) pairs stored
}

interface Ingest {
  # Writes profiles of the session's tenant.
  push @0 (request :PushRequest) -> (result :PushResult);
  # Stores one profile; returns once it is durable in the write-ahead log.
}
