// Real Connect clients (connect-node 2, protobuf-es 2) against a running hearth that holds the
// fixed dataset of tests/queries/dataset.json (pushed by tests/integration/test_query_api.py).
//
// usage: node tests/client/rpcs.test.mjs BASE_URL TESTDATA_DIR
//
// Generates JS from cluster/proto/*.proto with protoc-gen-es at start (into tests/client/gen, so
// the generated modules resolve @bufbuild/protobuf from tests/client/node_modules), then calls
// every RPC in both codecs (binary proto and Connect JSON) and checks real values against the
// testdata's `go tool pprof` answers. Prints one JSON line per case:
//   {"name": "...", "ok": true|false, "detail": "..."}
// and exits 0 when every case passed. Every call has a timeout; only BASE_URL is contacted.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import zlib from "node:zlib";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const CALL_TIMEOUT_MS = 30000;

const [baseUrl, testdata] = process.argv.slice(2);
if (!baseUrl || !testdata) {
  process.stderr.write("usage: node rpcs.test.mjs BASE_URL TESTDATA_DIR\n");
  process.exit(2);
}

// ---- code generation ---------------------------------------------------------------------------

function generate() {
  const gen = path.join(HERE, "gen");
  fs.rmSync(gen, { recursive: true, force: true });
  fs.mkdirSync(path.join(gen, "heatmap"), { recursive: true });
  const plugin = path.join(HERE, "node_modules", ".bin", "protoc-gen-es");
  const protoDir = path.join(ROOT, "cluster", "proto");
  const protos = fs.readdirSync(protoDir).filter((f) => f.endsWith(".proto")).map((f) => path.join(protoDir, f));
  const opts = "--es_opt=target=js,import_extension=js";
  execFileSync("protoc", [`--plugin=protoc-gen-es=${plugin}`, `--es_out=${gen}`, opts, `--proto_path=${protoDir}`, ...protos],
    { timeout: 60000, stdio: ["ignore", "inherit", "inherit"] });
  execFileSync("protoc", [`--plugin=protoc-gen-es=${plugin}`, `--es_out=${path.join(gen, "heatmap")}`, opts,
    `--proto_path=${HERE}`, path.join(HERE, "heatmap.proto")], { timeout: 60000, stdio: ["ignore", "inherit", "inherit"] });
  return gen;
}

const gen = generate();
const imp = (f) => import(pathToFileURL(path.join(gen, f)).href);
const { create, fromBinary, toBinary, toJson, equals } = await import("@bufbuild/protobuf");
const { createClient, ConnectError, Code } = await import("@connectrpc/connect");
const { createConnectTransport } = await import("@connectrpc/connect-node");
const Q = await imp("querier_pb.js");
const T = await imp("types_pb.js");
const P = await imp("push_pb.js");
const S = await imp("settings_pb.js");
const H = await imp("hearth_pb.js");
const G = await imp("profile_pb.js");
const HM = await imp("heatmap/heatmap_pb.js");

// ---- dataset and expected answers -------------------------------------------------------------

const dataset = JSON.parse(fs.readFileSync(path.join(ROOT, "tests", "queries", "dataset.json"), "utf8"));
const T0 = dataset.t0_ms;
const CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const SAMPLES = "process_cpu:samples:count:cpu:nanoseconds";
const WORKPOOL = '{service_name="workpool"}';
const WIN = { start: BigInt(T0 - 60000), end: BigInt(T0 + 60000) };

function totals(dir) {
  const out = {};
  for (const line of fs.readFileSync(path.join(testdata, "expected", dir, "totals.txt"), "utf8").split("\n")) {
    const p = line.trim().split(/\s+/);
    if (p.length === 2 && p[0].includes("/")) out[p[0]] = BigInt(p[1]);
  }
  return out;
}

function parseTop(file, n) {
  const lines = fs.readFileSync(path.join(testdata, "expected", file), "utf8").split("\n");
  const i = lines.findIndex((l) => /^\s*flat\s+flat%/.test(l));
  const rows = [];
  for (const l of lines.slice(i + 1)) {
    const m = l.match(/^\s*(\d+)[A-Za-z]*\s+\S+%\s+\S+%\s+(\d+)[A-Za-z]*\s+\S+%\s+(.*)$/);
    if (!m) continue;
    rows.push({ name: m[3].replace(/ \((partial-)?inline\)$/, ""), flat: BigInt(m[1]), cum: BigInt(m[2]) });
  }
  return rows.slice(0, n);
}

const TOT = {
  wp: totals("merged/go-workpool-cpu"),
  mi: totals("merged/go-mapindex-cpu"),
  wp0: totals("go/workpool.cpu.000"),
  wp1: totals("go/workpool.cpu.001"),
  wp2: totals("go/workpool.cpu.002"),
  wpHeap: totals("go/workpool.heap"),
};

// ---- reporting -----------------------------------------------------------------------------------

let failed = 0;
function report(name, ok, detail) {
  if (!ok) failed++;
  process.stdout.write(JSON.stringify({ name, ok, detail: String(detail ?? "") }) + "\n");
}

class Fail extends Error {}
function check(cond, msg) {
  if (!cond) throw new Fail(msg);
}
const big = (_, v) => (typeof v === "bigint" ? v.toString() : v);
function eq(got, want, what) {
  const g = JSON.stringify(got, big);
  const w = JSON.stringify(want, big);
  if (g !== w) throw new Fail(`${what}: want ${w}, got ${g}`);
}

async function runCase(name, fn) {
  try {
    const detail = await fn();
    report(name, true, detail ?? "");
  } catch (e) {
    const d = e instanceof Fail ? e.message : e instanceof ConnectError ? `ConnectError ${Code[e.code]}: ${e.rawMessage}` : String(e && e.stack || e);
    report(name, false, d);
  }
}

async function expectCode(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    check(e instanceof ConnectError, `${what}: want ConnectError, got ${e}`);
    eq(Code[e.code], Code[code], `${what}: error code (message: ${e.rawMessage})`);
    return `${Code[e.code]}: ${e.rawMessage}`;
  }
  throw new Fail(`${what}: succeeded, want ${Code[code]}`);
}

// ---- decoding helpers ----------------------------------------------------------------------------

// Flame graph levels -> nodes per depth {start,total,self,name,parent}; checks the layout.
function fgNodes(fg, width = 4) {
  const lv = fg.levels.map((l) => l.values.map(BigInt));
  const out = [];
  for (let d = 0; d < lv.length; d++) {
    const vals = lv[d];
    check(vals.length % width === 0, `level ${d}: ${vals.length} values, not a multiple of ${width}`);
    const nodes = [];
    let prevEnd = 0n;
    for (let i = 0; i < vals.length; i += width) {
      const start = prevEnd + vals[i];
      const total = vals[i + 1];
      prevEnd = start + total;
      const ni = Number(vals[i + width - 1]);
      check(ni >= 0 && ni < fg.names.length, `level ${d}: name index ${ni} out of range`);
      const node = { start, total, self: vals[i + 2], name: fg.names[ni], kids: 0n, parent: null };
      if (d > 0) {
        const parent = out[d - 1].find((p) => p.start <= start && start + total <= p.start + p.total);
        check(parent, `level ${d}: node ${node.name} lies in no parent`);
        node.parent = parent;
        parent.kids += total;
      }
      nodes.push(node);
    }
    out.push(nodes);
  }
  for (let d = 0; d + 1 < out.length; d++)
    for (const n of out[d]) check(n.self + n.kids === n.total, `node ${n.name}: self ${n.self} + children ${n.kids} != total ${n.total}`);
  return out;
}

function fgCheck(fg, wantTotal, what) {
  eq(fg.names[0], "total", `${what}: names[0]`);
  const nodes = fgNodes(fg);
  const rootTotal = nodes.length ? nodes[0].reduce((a, n) => a + n.total, 0n) : 0n;
  eq(BigInt(fg.total), rootTotal, `${what}: total vs root`);
  let selfSum = 0n, maxSelf = 0n;
  for (const lv of nodes) for (const n of lv) { selfSum += n.self; if (n.self > maxSelf) maxSelf = n.self; }
  eq(selfSum, BigInt(fg.total), `${what}: sum of self`);
  eq(BigInt(fg.maxSelf), maxSelf, `${what}: max_self`);
  if (wantTotal !== undefined) eq(BigInt(fg.total), wantTotal, `${what}: total`);
  return nodes;
}

// PROFILE_FORMAT_TREE bytes (pyroscope-api.md §2.6) -> {selfSum, nodes, names:Set}.
function decodeTree(buf) {
  let pos = 0;
  const uvarint = () => {
    let r = 0n, shift = 0n;
    for (;;) {
      check(pos < buf.length, "tree: truncated varint");
      const b = buf[pos++];
      r |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return r;
      shift += 7n;
    }
  };
  let selfSum = 0n, nodes = 0;
  const names = new Set();
  const stack = [1n];
  while (stack.length) {
    if (stack[stack.length - 1] === 0n) { stack.pop(); continue; }
    stack[stack.length - 1]--;
    const len = Number(uvarint());
    const name = Buffer.from(buf.subarray(pos, pos + len)).toString("utf8");
    pos += len;
    selfSum += uvarint();
    const kids = uvarint();
    names.add(name);
    nodes++;
    stack.push(kids);
  }
  eq(pos, buf.length, "tree: bytes consumed");
  return { selfSum, nodes, names };
}

// google.v1.Profile -> sum of the values of the sample type `type` (and checks of the tables).
function pprofTotal(p, type) {
  const idx = p.sampleType.findIndex((st) => p.stringTable[Number(st.type)] === type);
  check(idx >= 0, `pprof: no sample type ${type} in ${p.sampleType.map((st) => p.stringTable[Number(st.type)])}`);
  const locs = new Set(p.location.map((l) => l.id));
  let sum = 0n;
  for (const s of p.sample) {
    for (const id of s.locationId) check(locs.has(id), `pprof: sample references missing location ${id}`);
    sum += BigInt(s.value[idx]);
  }
  return sum;
}

function pointsSum(series) {
  return series.reduce((a, s) => a + s.points.reduce((b, pt) => b + pt.value, 0), 0);
}

function labelsOf(ls) {
  return Object.fromEntries(ls.labels.map((l) => [l.name, l.value]));
}

// ---- the clients -----------------------------------------------------------------------------------

function clients(binary) {
  const transport = createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: binary, defaultTimeoutMs: CALL_TIMEOUT_MS });
  return {
    q: createClient(Q.QuerierService, transport),
    hm: createClient(HM.QuerierService, transport),
    push: createClient(P.PusherService, transport),
    settings: createClient(S.SettingsService, transport),
    findings: createClient(H.FindingsService, transport),
  };
}

const answers = { binary: {}, json: {} }; // case -> canonical JSON of the response, per codec

function keep(codec, key, schema, msg) {
  answers[codec][key] = JSON.stringify(toJson(schema, msg));
}

// A merged pprof's sample/location order is not part of its meaning: compare the multiset of
// (stack of function names, values) plus the sample types.
function keepPprof(codec, key, p) {
  const fn = new Map(p.function.map((f) => [f.id, p.stringTable[Number(f.name)]]));
  const loc = new Map(p.location.map((l) => [l.id, l.line.map((ln) => fn.get(ln.functionId)).join("|")]));
  const rows = p.sample.map((s) => s.locationId.map((id) => loc.get(id)).join(";") + " " + s.value.join(","));
  rows.sort();
  const types = p.sampleType.map((t) => p.stringTable[Number(t.type)] + "/" + p.stringTable[Number(t.unit)]);
  answers[codec][key] = JSON.stringify({ types, rows });
}

function smstReq(extra) {
  return { profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end, ...extra };
}

async function codecCases(codec) {
  const binary = codec === "binary";
  const c = clients(binary);
  const cs = (name, fn) => runCase(`${codec}/${name}`, fn);

  await cs("ProfileTypes", async () => {
    const r = await c.q.profileTypes({ start: WIN.start, end: WIN.end });
    const ids = r.profileTypes.map((t) => t.ID);
    eq(ids, [...ids].sort(), "sorted by ID");
    for (const want of [CPU, SAMPLES, "memory:alloc_space:bytes:space:bytes", "memory:inuse_objects:count:space:bytes", "goroutines:goroutine:count:goroutine:count"])
      check(ids.includes(want), `missing ${want} in ${ids}`);
    const cpu = r.profileTypes.find((t) => t.ID === CPU);
    eq([cpu.name, cpu.sampleType, cpu.sampleUnit, cpu.periodType, cpu.periodUnit], ["process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds"], "cpu type fields");
    keep(codec, "ProfileTypes", Q.ProfileTypesResponseSchema, r);
    return `${ids.length} types`;
  });

  await cs("LabelNames", async () => {
    const r = await c.q.labelNames({ matchers: [WORKPOOL], start: WIN.start, end: WIN.end });
    eq(r.names, [...r.names].sort(), "sorted");
    for (const n of ["__name__", "__profile_type__", "region", "service_name"]) check(r.names.includes(n), `missing ${n} in ${r.names}`);
    keep(codec, "LabelNames", T.LabelNamesResponseSchema, r);
    return r.names.join(",");
  });

  await cs("LabelValues", async () => {
    const r = await c.q.labelValues({ name: "region", matchers: ['{service_name=~"workpool|mapindex"}'], start: WIN.start, end: WIN.end });
    eq(r.names, ["eu", "us"], "region values");
    const s = await c.q.labelValues({ name: "__name__", matchers: [WORKPOOL], start: WIN.start, end: WIN.end });
    eq(s.names, ["goroutines", "memory", "process_cpu"], "__name__ values of workpool");
    keep(codec, "LabelValues", T.LabelValuesResponseSchema, r);
  });

  await cs("Series", async () => {
    const r = await c.q.series({ matchers: [`{service_name="workpool",__name__="process_cpu"}`], labelNames: ["service_name", "__profile_type__", "region"], start: WIN.start, end: WIN.end });
    const got = r.labelsSet.map((ls) => JSON.stringify(labelsOf(ls))).sort();
    const want = [];
    for (const t of [CPU, SAMPLES]) for (const region of ["eu", "us"]) want.push(JSON.stringify(labelsOf({ labels: [{ name: "__profile_type__", value: t }, { name: "region", value: region }, { name: "service_name", value: "workpool" }] })));
    eq(got, want.sort(), "label sets");
    for (const ls of r.labelsSet) eq(ls.labels.length, 3, "labels restricted to label_names");
    keep(codec, "Series", Q.SeriesResponseSchema, r);
  });

  let fullGraph;
  await cs("SelectMergeStacktraces/FLAMEGRAPH", async () => {
    const r = await c.q.selectMergeStacktraces(smstReq({ format: Q.ProfileFormat.FLAMEGRAPH, maxNodes: 1048576n }));
    fullGraph = r.flamegraph;
    const nodes = fgCheck(r.flamegraph, TOT.wp["cpu/nanoseconds"], "workpool cpu");
    check(!r.flamegraph.names.includes("other"), "no 'other' at max_nodes 1048576");
    keep(codec, "SMST/FLAMEGRAPH", Q.SelectMergeStacktracesResponseSchema, r);
    // self per function == go tool pprof flat (top rows)
    const self = new Map();
    for (const lv of nodes.slice(1)) for (const n of lv) self.set(n.name, (self.get(n.name) ?? 0n) + n.self);
    for (const row of parseTop("merged/go-workpool-cpu/top.cpu.txt", 10)) eq(self.get(row.name) ?? 0n, row.flat, `self of ${row.name}`);
    return `total ${r.flamegraph.total}, ${r.flamegraph.names.length} names`;
  });

  await cs("SelectMergeStacktraces/UNSPECIFIED=flamegraph", async () => {
    const r = await c.q.selectMergeStacktraces(smstReq({ maxNodes: 1048576n }));
    check(r.flamegraph && equals(Q.FlameGraphSchema, r.flamegraph, fullGraph), "UNSPECIFIED answer differs from FLAMEGRAPH");
  });

  await cs("SelectMergeStacktraces/max_nodes", async () => {
    const r = await c.q.selectMergeStacktraces(smstReq({ format: Q.ProfileFormat.FLAMEGRAPH, maxNodes: 16n }));
    const nodes = fgCheck(r.flamegraph, TOT.wp["cpu/nanoseconds"], "max_nodes 16");
    const n = nodes.reduce((a, l) => a + l.length, 0);
    check(r.flamegraph.names.includes("other"), "no 'other' node after truncation");
    check(n < 40, `${n} nodes at max_nodes 16`);
    keep(codec, "SMST/max_nodes", Q.SelectMergeStacktracesResponseSchema, r);
    return `${n} nodes`;
  });

  await cs("SelectMergeStacktraces/TREE", async () => {
    const r = await c.q.selectMergeStacktraces(smstReq({ format: Q.ProfileFormat.TREE, maxNodes: 1048576n }));
    check(r.tree.length > 0, "empty tree bytes");
    const t = decodeTree(r.tree);
    eq(t.selfSum, TOT.wp["cpu/nanoseconds"], "sum of self in tree");
    for (const row of parseTop("merged/go-workpool-cpu/top.cpu.txt", 5)) check(t.names.has(row.name), `tree lacks ${row.name}`);
    keep(codec, "SMST/TREE", Q.SelectMergeStacktracesResponseSchema, r);
    return `${t.nodes} nodes`;
  });

  await cs("SelectMergeStacktraces/PPROF", async () => {
    const r = await c.q.selectMergeStacktraces(smstReq({ format: Q.ProfileFormat.PPROF }));
    check(r.pprof && r.pprof.profile, "no pprof.profile");
    eq(pprofTotal(r.pprof.profile, "cpu"), TOT.wp["cpu/nanoseconds"], "pprof cpu total");
    keepPprof(codec, "SMST/PPROF", r.pprof.profile);
  });

  await cs("SelectMergeStacktraces/call_site", async () => {
    check(fullGraph, "needs the FLAMEGRAPH case");
    const nodes = fgNodes(fullGraph);
    // the heaviest depth-2 frame under the heaviest root child
    const a = [...nodes[1]].sort((x, y) => (y.total > x.total ? 1 : y.total < x.total ? -1 : 0))[0];
    const b = nodes[2].filter((n) => n.parent === a).sort((x, y) => (y.total > x.total ? 1 : -1))[0];
    // a third frame that is not the whole of b: the lightest child of b
    const kids = nodes[3].filter((n) => n.parent === b).sort((x, y) => (x.total > y.total ? 1 : -1));
    check(kids.length >= 2, `${b.name} has ${kids.length} children`);
    const cc = kids[0];
    const r = await c.q.selectMergeStacktraces(smstReq({ maxNodes: 1048576n, stackTraceSelector: { callSite: [{ name: a.name }, { name: b.name }, { name: cc.name }] } }));
    const want = cc.total;
    check(want < b.total, "call site is a strict part");
    fgCheck(r.flamegraph, want, `call_site ${a.name};${b.name};${cc.name}`);
    const rn = fgNodes(r.flamegraph);
    eq(rn[1].map((n) => n.name), [a.name], "only the call-site root");
    eq(rn[3].map((n) => n.name), [cc.name], "only the call-site frame at depth 3");
    keep(codec, "SMST/call_site", Q.SelectMergeStacktracesResponseSchema, r);
    return `${a.name};${b.name};${cc.name} = ${want}`;
  });

  await cs("SelectMergeProfile", async () => {
    const p = await c.q.selectMergeProfile({ profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end });
    eq(pprofTotal(p, "cpu"), TOT.wp["cpu/nanoseconds"], "merged pprof cpu total");
    keepPprof(codec, "SelectMergeProfile", p);
    return `${p.sample.length} samples, ${p.location.length} locations`;
  });

  await cs("SelectMergeProfile/GoPGO", async () => {
    const p = await c.q.selectMergeProfile({ profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end, stackTraceSelector: { goPgo: { keepLocations: 2, aggregateCallees: true } } });
    eq(pprofTotal(p, "cpu"), TOT.wp["cpu/nanoseconds"], "GoPGO pprof cpu total");
    for (const s of p.sample) check(s.locationId.length <= 2, `sample with ${s.locationId.length} locations at keep_locations 2`);
    keepPprof(codec, "SelectMergeProfile/GoPGO", p);
    return `${p.sample.length} samples`;
  });

  await cs("SelectSeries/sum", async () => {
    const r = await c.q.selectSeries({ profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end, step: 10 });
    eq(r.series.length, 1, "one series without group_by");
    eq(r.series[0].labels.length, 0, "no labels without group_by");
    eq(BigInt(pointsSum(r.series)), TOT.wp["cpu/nanoseconds"], "sum of points");
    const pts = r.series[0].points.map((p) => [Number(p.timestamp) - T0, p.value]);
    eq(pts, [[0, Number(TOT.wp0["cpu/nanoseconds"])], [10000, Number(TOT.wp1["cpu/nanoseconds"])], [20000, Number(TOT.wp2["cpu/nanoseconds"])]], "points (t - t0 ms, value)");
    keep(codec, "SelectSeries/sum", Q.SelectSeriesResponseSchema, r);
  });

  await cs("SelectSeries/group_by+limit", async () => {
    const r = await c.q.selectSeries({ profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end, step: 10, groupBy: ["region"] });
    const by = Object.fromEntries(r.series.map((s) => [labelsOf(s).region, BigInt(pointsSum([s]))]).sort());
    eq(by, { eu: TOT.wp0["cpu/nanoseconds"] + TOT.wp2["cpu/nanoseconds"], us: TOT.wp1["cpu/nanoseconds"] }, "sum per region");
    for (const s of r.series) eq(s.labels.map((l) => l.name), ["region"], "labels = group_by");
    const l = await c.q.selectSeries({ profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end, step: 10, groupBy: ["region"], limit: 1n });
    eq(l.series.map((s) => labelsOf(s).region), ["eu"], "limit 1 keeps the top series");
    keep(codec, "SelectSeries/group_by", Q.SelectSeriesResponseSchema, r);
  });

  await cs("SelectSeries/AVERAGE", async () => {
    const r = await c.q.selectSeries({ profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end, step: 60, aggregation: T.TimeSeriesAggregationType.AVERAGE });
    eq(r.series.length, 1, "series");
    const pts = r.series[0].points.map((p) => [Number(p.timestamp) - T0, p.value]);
    // buckets (t-60s, t]: t0 holds cpu.000; t0+60s holds cpu.001 and cpu.002
    eq(pts, [[0, Number(TOT.wp0["cpu/nanoseconds"])], [60000, Number(TOT.wp1["cpu/nanoseconds"] + TOT.wp2["cpu/nanoseconds"]) / 2]], "average points");
    keep(codec, "SelectSeries/AVERAGE", Q.SelectSeriesResponseSchema, r);
  });

  await cs("Diff", async () => {
    const side = (from, to) => ({ profileTypeID: CPU, labelSelector: WORKPOOL, start: BigInt(T0 + from), end: BigInt(T0 + to) });
    const r = await c.q.diff({ left: side(-5000, 5000), right: side(5000, 15000) });
    const fg = r.flamegraph;
    eq(fg.leftTicks, TOT.wp0["cpu/nanoseconds"], "leftTicks");
    eq(fg.rightTicks, TOT.wp1["cpu/nanoseconds"], "rightTicks");
    eq(fg.total, fg.leftTicks + fg.rightTicks, "total = left + right");
    eq(fg.names[0], "total", "names[0]");
    const nodes = fgNodes({ names: fg.names, levels: fg.levels.map((l) => ({ values: l.values.filter((_, i) => i % 7 < 3 || i % 7 === 6) })) }, 4);
    eq(nodes[0][0].total, fg.leftTicks, "left root total");
    const right = fgNodes({ names: fg.names, levels: fg.levels.map((l) => ({ values: l.values.filter((_, i) => i % 7 >= 3) })) }, 4);
    eq(right[0][0].total, fg.rightTicks, "right root total");
    keep(codec, "Diff", Q.DiffResponseSchema, r);
  });

  await cs("GetProfileStats", async () => {
    const r = await c.q.getProfileStats({});
    eq(r.dataIngested, true, "dataIngested");
    eq(Number(r.oldestProfileTime), T0, "oldest (ms)");
    eq(Number(r.newestProfileTime), T0 + 20000, "newest (ms)");
    keep(codec, "GetProfileStats", T.GetProfileStatsResponseSchema, r);
  });

  await cs("AnalyzeQuery", async () => {
    const r = await c.q.analyzeQuery({ start: WIN.start, end: WIN.end, query: `${CPU}${WORKPOOL}` });
    check(r.queryScopes.length >= 1, "no query scope");
    const s = r.queryScopes[0];
    eq(s.profileCount, 3n, "profile_count (3 workpool cpu profiles)");
    // byte counts may be 0 (pyroscope-api.md §11: AnalyzeQuery "can return empty")
    check(s.seriesCount >= 1n && s.sampleCount > 0n, `scope ${JSON.stringify(toJson(Q.QueryScopeSchema, s))}`);
    eq(r.queryImpact.totalQueriedSeries, s.seriesCount, "impact series = scope series");
    keep(codec, "AnalyzeQuery", Q.AnalyzeQueryResponseSchema, r);
    return JSON.stringify(toJson(Q.QueryScopeSchema, s));
  });

  await cs("SelectMergeSpanProfile (pushed span_id labels)", async () => {
    // A real profile with span_id labels on every third sample (two spans alternating), pushed to
    // its own service; the span profile must hold exactly the labelled samples' cpu values.
    const raw = zlib.gunzipSync(fs.readFileSync(path.join(testdata, "go", "workpool.cpu.000.pb.gz")));
    const prof = fromBinary(G.ProfileSchema, raw);
    // Inside the dataset's time span (GetProfileStats stays as it is); the gzip case below counts it.
    const at = T0 + 7000;
    prof.timeNanos = BigInt(at) * 1000000n;
    const str = (v) => { prof.stringTable.push(v); return BigInt(prof.stringTable.length - 1); };
    const key = str("span_id"), spanA = "00000000000a11ce", spanB = "0000000000000b0b";
    const ids = [str(spanA), str(spanB)];
    const cpuIdx = prof.sampleType.findIndex((t) => prof.stringTable[Number(t.type)] === "cpu");
    const want = [0n, 0n];
    prof.sample.forEach((smp, i) => {
      if (i % 3 !== 0) return;
      const which = (i / 3) % 2;
      smp.label.push(create(G.LabelSchema, { key, str: ids[which] }));
      if (smp.locationId.length > 0) want[which] += smp.value[cpuIdx];
    });
    check(want[0] > 0n && want[1] > 0n, "the profile has labelled cpu samples");
    const svc = `spans-${codec}`;
    await c.push.push({ series: [{ labels: [{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: svc }], samples: [{ rawProfile: zlib.gzipSync(toBinary(G.ProfileSchema, prof)), ID: "5f0c6a4e-6d3b-4c1e-9a53-0000000001" + (binary ? "01" : "02") }] }] });
    const req = (extra) => ({ profileTypeID: CPU, labelSelector: `{service_name="${svc}"}`, start: BigInt(at - 30000), end: BigInt(at + 30000), maxNodes: 1048576n, ...extra });
    const deadline = Date.now() + 10000;
    let r;
    while (Date.now() < deadline) {
      r = await c.q.selectMergeSpanProfile(req({ spanSelector: [spanA], format: Q.ProfileFormat.FLAMEGRAPH }));
      if (BigInt(r.flamegraph?.total ?? 0n) !== 0n) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    fgCheck(r.flamegraph, want[0], "span A flame graph");
    const both = await c.q.selectMergeSpanProfile(req({ spanSelector: [spanB, spanA] }));
    fgCheck(both.flamegraph, want[0] + want[1], "spans A and B");
    const tree = await c.q.selectMergeSpanProfile(req({ spanSelector: [spanB], format: Q.ProfileFormat.TREE }));
    eq(decodeTree(tree.tree).selfSum, want[1], "span B tree: sum of self");
    const none = await c.q.selectMergeSpanProfile(req({ spanSelector: ["00000000000000ff"] }));
    eq(BigInt(none.flamegraph?.total ?? 0n), 0n, "an unknown span selects nothing");
    // The same filter through SelectMergeStacktraces' span_selector; without it, the whole profile.
    const sm = await c.q.selectMergeStacktraces(req({ spanSelector: [spanA] }));
    eq(BigInt(sm.flamegraph.total), want[0], "SelectMergeStacktraces span_selector");
    const all = await c.q.selectMergeStacktraces(req({}));
    eq(BigInt(all.flamegraph.total), TOT.wp0["cpu/nanoseconds"], "the whole profile is unchanged by span ids");
    const bad = await expectCode(c.q.selectMergeSpanProfile(req({ spanSelector: ["xyz"] })), Code.InvalidArgument, "bad span id");
    check(bad.includes("xyz"), `the error names the bad span id: ${bad}`);
    keep(codec, "SelectMergeSpanProfile/FLAMEGRAPH", Q.SelectMergeSpanProfileResponseSchema, both);
    keep(codec, "SelectMergeSpanProfile/TREE", Q.SelectMergeSpanProfileResponseSchema, tree);
    return `span A ${want[0]}, span B ${want[1]}`;
  });

  await cs("SelectHeatmap=Unimplemented", () =>
    expectCode(c.hm.selectHeatmap({ profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end, step: 10 }), Code.Unimplemented, "SelectHeatmap"));

  await cs("InvalidArgument/bad selector", async () => {
    const a = await expectCode(c.q.selectMergeStacktraces(smstReq({ labelSelector: '{service_name="workpool"' })), Code.InvalidArgument, "unclosed selector");
    await expectCode(c.q.labelNames({ matchers: ["{service_name=~\"(\"}"], start: WIN.start, end: WIN.end }), Code.InvalidArgument, "bad regex");
    await expectCode(c.q.selectSeries({ profileTypeID: CPU, labelSelector: "not a selector", start: WIN.start, end: WIN.end, step: 10 }), Code.InvalidArgument, "garbage selector");
    return a;
  });

  await cs("Settings Get/Set/Delete", async () => {
    const name = `pluginSettings-${codec}`;
    const value = JSON.stringify({ codec, enableFlameGraphDotComExport: true });
    const set = await c.settings.set({ setting: { name, value, modifiedAt: 1000n } });
    eq([set.setting.name, set.setting.value, set.setting.modifiedAt], [name, value, 1000n], "Set answer");
    const set2 = await c.settings.set({ setting: { name, value: value + " ", modifiedAt: 2000n } });
    eq(set2.setting.modifiedAt, 2000n, "newer Set");
    await expectCode(c.settings.set({ setting: { name, value: "older", modifiedAt: 1500n } }), Code.AlreadyExists, "older Set");
    let got = await c.settings.get({});
    const mine = got.settings.filter((s) => s.name === name);
    eq(mine.map((s) => [s.value, s.modifiedAt]), [[value + " ", 2000n]], "Get after the refused older Set");
    await c.settings.delete({ name });
    got = await c.settings.get({});
    check(!got.settings.some((s) => s.name === name), "setting still there after Delete");
  });

  await cs("Explain (top functions = go tool pprof -top)", async () => {
    const r = await c.findings.explain({ selection: { profileTypeID: CPU, labelSelector: WORKPOOL, start: WIN.start, end: WIN.end }, top: 10n });
    eq(r.total, TOT.wp["cpu/nanoseconds"], "total");
    const top = parseTop("merged/go-workpool-cpu/top.cpu.txt", 10);
    eq(r.topSelf.length, 10, "top_self length");
    eq(r.topSelf.map((f) => f.self.toString()), top.map((t) => t.flat.toString()), "top_self values in order");
    // ties may be listed in any order: compare names per value
    const group = (rows, nm, v) => rows.reduce((m, x) => { const k = v(x).toString(); (m[k] ??= []).push(nm(x)); m[k].sort(); return m; }, {});
    eq(group(r.topSelf, (f) => f.name, (f) => f.self), group(top, (t) => t.name, (t) => t.flat), "top_self names per value");
    for (const f of r.topSelf) {
      const row = top.find((t) => t.name === f.name);
      eq(f.total, row.cum, `total (cum) of ${f.name}`);
      check(Math.abs(f.selfShare - Number(f.self) / Number(r.total)) < 1e-12, `self_share of ${f.name}`);
    }
    check(r.hotPath.length > 0 && r.hotPath[0].total <= r.total, "hot path");
    for (let i = 1; i < r.hotPath.length; i++) check(r.hotPath[i].total <= r.hotPath[i - 1].total, "hot path totals grow along the path");
    keep(codec, "Explain", H.ExplainResponseSchema, r);
    return r.topSelf.slice(0, 3).map((f) => `${f.name}=${f.self}`).join(" ");
  });

  await cs("Regression", async () => {
    const sel = (from, to) => ({ profileTypeID: CPU, labelSelector: WORKPOOL, start: BigInt(T0 + from), end: BigInt(T0 + to) });
    const r = await c.findings.regression({ baseline: sel(-5000, 5000), comparison: sel(5000, 15000), top: 5n });
    eq(r.baselineTotal, TOT.wp0["cpu/nanoseconds"], "baseline_total");
    eq(r.comparisonTotal, TOT.wp1["cpu/nanoseconds"], "comparison_total");
    check(r.selfGrew.length > 0 && r.selfShrank.length > 0, "grew and shrank lists");
    for (const f of [...r.selfGrew, ...r.selfShrank]) {
      const bs = Number(f.baselineSelf) / Number(r.baselineTotal), cs2 = Number(f.comparisonSelf) / Number(r.comparisonTotal);
      check(Math.abs(f.baselineSelfShare - bs) < 1e-12 && Math.abs(f.comparisonSelfShare - cs2) < 1e-12, `shares of ${f.name}`);
      check(Math.abs(f.selfShareDelta - (cs2 - bs)) < 1e-12, `delta of ${f.name}`);
    }
    for (const f of r.selfGrew) check(f.selfShareDelta > 0, `grew ${f.name} delta ${f.selfShareDelta}`);
    for (const f of r.selfShrank) check(f.selfShareDelta < 0, `shrank ${f.name} delta ${f.selfShareDelta}`);
    // self values of the files: sha256.block per go tool pprof
    const b = parseTop("go/workpool.cpu.000/top.cpu.txt", 20), cmp = parseTop("go/workpool.cpu.001/top.cpu.txt", 20);
    for (const f of [...r.selfGrew, ...r.selfShrank]) {
      const rb = b.find((t) => t.name === f.name), rc = cmp.find((t) => t.name === f.name);
      if (rb) eq(f.baselineSelf, rb.flat, `baseline self of ${f.name}`);
      if (rc) eq(f.comparisonSelf, rc.flat, `comparison self of ${f.name}`);
    }
    keep(codec, "Regression", H.RegressionResponseSchema, r);
  });

  await cs("Push (real profile) then query it back", async () => {
    const raw = zlib.gunzipSync(fs.readFileSync(path.join(testdata, "go", "workpool.cpu.000.pb.gz")));
    const prof = fromBinary(G.ProfileSchema, raw);
    prof.timeNanos = BigInt(T0 + 5000) * 1000000n;
    const body = zlib.gzipSync(toBinary(G.ProfileSchema, prof));
    const svc = `pushed-${codec}`;
    await c.push.push({ series: [{ labels: [{ name: "__name__", value: "process_cpu" }, { name: "service_name", value: svc }], samples: [{ rawProfile: body, ID: "5f0c6a4e-6d3b-4c1e-9a53-0000000000" + (binary ? "01" : "02") }] }] });
    const deadline = Date.now() + 10000;
    let total = -1n;
    while (Date.now() < deadline) {
      const r = await c.q.selectMergeStacktraces({ profileTypeID: CPU, labelSelector: `{service_name="${svc}"}`, start: WIN.start, end: WIN.end });
      total = BigInt(r.flamegraph?.total ?? 0n);
      if (total !== 0n) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    eq(total, TOT.wp0["cpu/nanoseconds"], "total of the pushed profile");
    const s = await c.q.selectSeries({ profileTypeID: SAMPLES, labelSelector: `{service_name="${svc}"}`, start: WIN.start, end: WIN.end, step: 10 });
    eq(BigInt(pointsSum(s.series)), TOT.wp0["samples/count"], "samples/count of the pushed profile");
  });
}

// gzip: connect-node advertises gzip; a large answer must arrive compressed and decode.
async function gzipCases() {
  await runCase("gzip/large SelectMergeProfile over connect-node", async () => {
    const encodings = [];
    const transport = createConnectTransport({
      baseUrl, httpVersion: "1.1", useBinaryFormat: true, defaultTimeoutMs: CALL_TIMEOUT_MS,
      interceptors: [(next) => async (req) => {
        encodings.push(req.header.get("accept-encoding"));
        const res = await next(req);
        encodings.push(res.header.get("content-encoding"));
        return res;
      }],
    });
    const q = createClient(Q.QuerierService, transport);
    const p = await q.selectMergeProfile({ profileTypeID: CPU, labelSelector: "{}", start: WIN.start, end: WIN.end });
    eq(pprofTotal(p, "cpu"), TOT.wp["cpu/nanoseconds"] + TOT.mi["cpu/nanoseconds"] + TOT.wp0["cpu/nanoseconds"] * 4n,
       "cpu total of everything (dataset + 4 pushed copies: 2 plain, 2 with span ids)");
    const size = toBinary(G.ProfileSchema, p).length;
    check(size > 50000, `answer of ${size} bytes is not large`);
    check(String(encodings[0]).includes("gzip"), `request Accept-Encoding ${encodings[0]}`);
    eq(encodings[1], "gzip", "response Content-Encoding");
    return `${size} bytes, request accept-encoding ${encodings[0]}, response content-encoding ${encodings[1]}`;
  });

  await runCase("gzip/raw HTTP Content-Encoding", async () => {
    const body = JSON.stringify({ profileTypeID: CPU, labelSelector: "{}", start: String(WIN.start), end: String(WIN.end) });
    const res = await new Promise((resolve, reject) => {
      const u = new URL("/querier.v1.QuerierService/SelectMergeProfile", baseUrl);
      const req = http.request(u, { method: "POST", timeout: CALL_TIMEOUT_MS, headers: { "Content-Type": "application/json", "Accept-Encoding": "gzip" } }, (r) => {
        const chunks = [];
        r.on("data", (c) => chunks.push(c));
        r.on("end", () => resolve({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks) }));
        r.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end(body);
    });
    eq(res.status, 200, "status");
    eq(res.headers["content-encoding"], "gzip", "Content-Encoding");
    const plain = zlib.gunzipSync(res.body);
    const j = JSON.parse(plain.toString("utf8"));
    check(Array.isArray(j.sample) && j.sample.length > 100, "gunzipped JSON pprof has samples");
    return `${res.body.length} gzipped -> ${plain.length} bytes`;
  });
}

await codecCases("binary");
await codecCases("json");
await gzipCases();

// binary and JSON answers must be the same messages
for (const key of Object.keys(answers.binary)) {
  await runCase(`codecs agree/${key}`, async () => {
    check(key in answers.json, "no JSON answer to compare");
    if (answers.binary[key] !== answers.json[key]) {
      const a = answers.binary[key], b = answers.json[key];
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      throw new Fail(`differ at char ${i}: binary …${a.slice(Math.max(0, i - 60), i + 60)}… vs json …${b.slice(Math.max(0, i - 60), i + 60)}…`);
    }
  });
}

process.exit(failed ? 1 : 0);
