@0xb27668d5cb0535b2;
# Admin: an operator's view of a node: cluster status, blocks, maintenance, tenants, config.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("hearth::rpc");

struct Node {
  # One member of the cluster.
  name @0 :Text;            # node name (host:rpc port for a single node)
  roles @1 :List(Text);     # e.g. "ingester", "querier", "compactor"
  state @2 :Text;           # "ready", "recovering" or a peer's reported state
  lastHeartbeatMs @3 :Int64;  # Unix ms of the last sign of life (now for this node)
  httpAddress @4 :Text;     # HOST:PORT of its HTTP API ("" = unknown)
  rpcAddress @5 :Text;      # HOST:PORT of its RPC API ("" = unknown)
  version @6 :Text;         # hearth version
  startedMs @7 :Int64;      # Unix ms the process started (0 = unknown)
  clusterAddress @8 :Text;  # HOST:PORT of its cluster (CAF remoting) endpoint ("" = single node)
  ringShare @9 :Float64;    # share of the ring's hash space it is first replica of (0: not an ingester)
  behind @10 :Bool;         # some node holds replica writes it missed (reads prefer other replicas)
}

struct ClusterStatus {
  # This node and the peers it knows.
  self @0 :Node;         # the node that answered
  peers @1 :List(Node);  # the other members (empty on a single node)
}

struct Section {
  # One section of a segment file.
  name @0 :Text;       # section name, e.g. "samples"
  offset @1 :UInt64;   # byte offset of its record in the file
  bytes @2 :UInt64;    # stored bytes of its body
  rawBytes @3 :UInt64; # bytes after decompression
  codec @4 :Text;      # "none", "lz4" or "zstd"
  crc @5 :UInt32;      # the stored CRC-32C of the record
  crcOk @6 :Bool;      # the CRC matches the record
}

struct Block {
  # One sealed block (segment file) of a partition.
  tenant @0 :Text;          # owning tenant
  shard @1 :UInt32;         # partition (series hash shard)
  id @2 :UInt64;            # block id
  path @3 :Text;            # file path
  level @4 :UInt8;          # 0 = sealed head, 1-2 = compacted
  rollupStepNs @5 :Int64;   # 0 = raw profiles, else a rollup's step
  minTimeNs @6 :Int64;      # oldest profile (Unix ns)
  maxTimeNs @7 :Int64;      # newest profile (Unix ns)
  bytes @8 :UInt64;         # file size
  series @9 :UInt64;        # series in the block
  profiles @10 :UInt64;     # profiles in the block
  samples @11 :UInt64;      # stored (stack, value) pairs
  codec @12 :Text;          # section codec: "none", "lz4" or "zstd"
  version @13 :UInt32;      # segment format version
  sources @14 :List(UInt64);  # blocks this one was compacted from
}

struct BlockInspection {
  # A block's footer and sections.
  block @0 :Block;               # the footer's metadata
  sections @1 :List(Section);    # every section the TOC lists
  stacks @2 :UInt64;             # stack tree nodes
  walSeq @3 :UInt64;             # the WAL position the block covers
}

struct VerifyResult {
  # The outcome of fully decoding one block.
  block @0 :Block;      # the block (its catalog entry when the footer is unreadable)
  ok @1 :Bool;          # decoded with every CRC and cross reference valid
  error @2 :Text;       # what was wrong when not ok
}

struct CompactionReport {
  # What a maintenance run did.
  jobs @0 :UInt64;        # compaction jobs applied
  blocksIn @1 :UInt64;    # blocks merged
  blocksOut @2 :UInt64;   # blocks written
  bytesIn @3 :UInt64;     # bytes read
  bytesOut @4 :UInt64;    # bytes written
  duplicates @5 :UInt64;  # duplicate profiles dropped
  dropped @6 :UInt64;     # blocks deleted by retention
}

struct TenantStats {
  # A tenant's stored data.
  tenant @0 :Text;            # tenant id
  partitions @1 :UInt32;      # partitions (shards) open
  blocks @2 :UInt64;          # sealed blocks
  bytes @3 :UInt64;           # bytes of sealed blocks on disk
  series @4 :UInt64;          # series summed over blocks (a series in two blocks counts twice)
  profiles @5 :UInt64;        # profiles in sealed blocks
  samples @6 :UInt64;         # stored pairs in sealed blocks
  minTimeNs @7 :Int64;        # oldest profile in a sealed block (0 = none)
  maxTimeNs @8 :Int64;        # newest profile in a sealed block (0 = none)
}

interface Admin {
  # Operations on this node. `tenant` "" means every tenant.
  status @0 () -> (status :ClusterStatus);
  # This node and its peers.
  listBlocks @1 (tenant :Text) -> (blocks :List(Block));
  # Sealed blocks, by tenant, shard and time.
  inspectBlock @2 (tenant :Text, id :UInt64) -> (inspection :BlockInspection);
  # One block's footer and sections (not_found when no such block).
  verifyBlocks @3 (tenant :Text) -> (results :List(VerifyResult), checked :UInt64, corrupted :UInt64);
  # Fully decodes every block, checking every CRC; corrupted blocks are reported, not served differently.
  compact @4 () -> (report :CompactionReport);
  # Runs compaction (and retention) now; overloaded when a run is in progress.
  runRetention @5 () -> (report :CompactionReport);
  # Applies retention now, without compaction jobs.
  tenantStats @6 (tenant :Text) -> (tenants :List(TenantStats));
  # Stored data per tenant.
  config @7 () -> (toml :Text);
  # The effective configuration, as `hearth --print-config` prints it.
}
