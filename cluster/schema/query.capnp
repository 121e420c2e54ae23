@0xc17841e55f890b93;
# Query: every read of querier.v1 and hearth.v1.FindingsService over the session's tenant(s). The
# server builds the same requests the Connect API decodes, so validation, limits and answers are
# those of the HTTP API.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("hearth::rpc");
using Common = import "common.capnp";

struct FlameGraph {
  # Pyroscope's FlameGraph: names and per-depth levels of 4 ints per node.
  names @0 :List(Text);            # names[0] = "total"; node name indexes point here
  levels @1 :List(List(Int64));    # per depth: [x offset (delta), total, self, name index] per node
  total @2 :Int64;                 # the root's total
  maxSelf @3 :Int64;               # the largest self of a rendered node
}

struct FlameGraphDiff {
  # Pyroscope's FlameGraphDiff: levels of 7 ints per node.
  names @0 :List(Text);          # names[0] = "total"
  levels @1 :List(List(Int64));  # per depth: [left x, left total, left self, right x, right total, right self, name]
  total @2 :Int64;               # left ticks + right ticks
  maxSelf @3 :Int64;             # the largest self of either side
  leftTicks @4 :Int64;           # the left root's total
  rightTicks @5 :Int64;          # the right root's total
}

struct FunctionShare {
  # One function of a tree, summed over every frame of it.
  name @0 :Text;         # function name
  self @1 :Int64;        # value of samples whose leaf is this function
  total @2 :Int64;       # value of samples with this function on the stack (counted once)
  selfShare @3 :Float64;   # self / tree total
  totalShare @4 :Float64;  # total / tree total
}

struct PathFrame {
  # One frame of the hottest path.
  name @0 :Text;       # function name
  self @1 :Int64;      # self of this node
  total @2 :Int64;     # total of this node
  share @3 :Float64;   # total / tree total
}

struct Findings {
  # The exact top functions and the hottest path of a selection.
  total @0 :Int64;                   # the tree's total
  topSelf @1 :List(FunctionShare);   # by self, descending
  topTotal @2 :List(FunctionShare);  # by total, descending
  hotPath @3 :List(PathFrame);       # from the root, always into the heaviest child
}

struct FunctionChange {
  # A function's shares on both sides of a regression.
  name @0 :Text;               # function name
  leftSelf @1 :Int64;          # baseline self
  leftTotal @2 :Int64;         # baseline total
  rightSelf @3 :Int64;         # comparison self
  rightTotal @4 :Int64;        # comparison total
  selfShareDelta @5 :Float64;  # right self share - left self share
  totalShareDelta @6 :Float64; # right total share - left total share
}

struct Regression {
  # Which functions grew or shrank between a baseline and a comparison.
  leftTotal @0 :Int64;                  # the baseline tree's total
  rightTotal @1 :Int64;                 # the comparison tree's total
  selfGrew @2 :List(FunctionChange);    # largest self-share growth first
  selfShrank @3 :List(FunctionChange);  # largest self-share drop first
  totalGrew @4 :List(FunctionChange);   # largest total-share growth first
  totalShrank @5 :List(FunctionChange); # largest total-share drop first
}

struct Point {
  # One point of a time series.
  timestampMs @0 :Int64;  # the step's start (Unix ms)
  value @1 :Float64;      # sum (or average) of the profiles' totals in the step
}

struct Series {
  # One time series: its group's labels and points.
  labels @0 :List(Common.Label);  # the group_by labels of this series
  points @1 :List(Point);         # by time
}

interface ByteSink {
  # Receives a streamed byte answer (pprof export) in order, with flow control.
  begin @0 (totalBytes :UInt64);     # the size of what follows, before the first chunk
  write @1 (chunk :Data) -> stream;  # one chunk of the bytes, in order
  done @2 ();                        # the last chunk was written
}

interface Query {
  # Reads of the session's tenant(s).

  flameGraph @0 (selection :Common.Selection, maxNodes :Int64) -> (graph :FlameGraph);
  # The merged flame graph (SelectMergeStacktraces); maxNodes 0 = the server's default.

  findings @1 (selection :Common.Selection, top :Int64) -> (findings :Findings);
  # Top functions by self and total and the hottest path (FindingsService.Explain); top 0 = 20.

  regression @2 (baseline :Common.Selection, comparison :Common.Selection, top :Int64)
      -> (regression :Regression);
  # Functions whose share grew or shrank (FindingsService.Regression); top 0 = 20.

  series @3 (selection :Common.Selection, stepS :Float64, groupBy :List(Text),
             average :Bool, limit :Int64) -> (series :List(Series));
  # Totals on a step grid (SelectSeries): one series per group_by value set; limit 0 = all.

  diff @4 (left :Common.Selection, right :Common.Selection, maxNodes :Int64)
      -> (diff :FlameGraphDiff);
  # Two selections of one profile type aligned into a diff flame graph (Diff).

  labelNames @5 (matchers :List(Text), startMs :Int64, endMs :Int64) -> (names :List(Text));
  # Label names of the series matching the selectors (ANDed); range 0/0 = all time.

  labelValues @6 (name :Text, matchers :List(Text), startMs :Int64, endMs :Int64)
      -> (values :List(Text));
  # Values of one label; range 0/0 = all time.

  profileTypes @7 (startMs :Int64, endMs :Int64) -> (types :List(Text));
  # Profile type ids with data in the range; 0/0 = the last hour.

  exportPprof @8 (selection :Common.Selection, maxNodes :Int64, sink :ByteSink,
                  chunkBytes :UInt32) -> (bytes :UInt64);
  # The merged profile as gzipped pprof (SelectMergeProfile), written to `sink` in chunks of
  # chunkBytes (0 = 64 KiB; at most 4 MiB) after `begin`, then `done`; returns the total size. maxNodes 0 = full fidelity.
}
