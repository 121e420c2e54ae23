#!/usr/bin/env python3
"""OTLP profiles over HTTP (POST /v1development/profiles, pyroscope-api.md §9) against a real hearth
on 127.0.0.1, with requests built by google.protobuf (Debian's python3-protobuf) from our
declaration of the v1development protos:

- real pprof files of the shared testdata converted to OTLP (otlp_convert.py), sent as binary and
  as proto3 JSON, gzipped and not, and also on the gRPC service path: their flame graphs must equal
  those of the same pprof pushed through push.v1 Push (CPU `samples` profiles: times the period);
  profile types, `__otel__`, `__delta__`, resource and scope attributes and service_name come back
  through LabelNames/LabelValues/ProfileTypes;
- sample attributes become labels, a sample's own service.name moves it to that service, the
  unknown_service fallbacks;
- bad requests: wrong Content-Type (415), gRPC content type (415), missing dictionary (400), a bad
  index (400 naming the table), gzip that is not (400), oversize bodies raw and inflated (413),
  more profiles than limits.max_otlp_profiles (413), tenancy (401 without X-Scope-OrgID when
  required) and the per-tenant profile rate (429);
- a stack deeper than limits.max_stack_depth: 400 naming it (reject), or its root side kept (truncate).

usage: test_otlp.py PATH/TO/hearth [NAME_SUBSTRING...]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_otlp")

import gzip  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import unittest  # noqa: E402

import otlp_convert  # noqa: E402
from hearthtest import error_text  # noqa: E402

T0 = int(time.time()) - 600  # seconds; every profile of this file is stamped T0
ROUTE = "/v1development/profiles"
GRPC_PATH = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


class State:
    server = None
    pb = None  # namespace(profile, otlp)


def window():
    return (T0 - 60) * 1000, (T0 + 60) * 1000


def post(req, codec="proto", gz=False, server=None, path=ROUTE, headers=None):
    """Sends an ExportProfilesServiceRequest -> (status, headers, body)."""
    from google.protobuf import json_format

    if codec == "json":
        body, ctype = json_format.MessageToJson(req).encode(), "application/json"
    else:
        body, ctype = req.SerializeToString(), "application/x-protobuf"
    h = {"Content-Type": ctype}
    if gz:
        body = gzip.compress(body)
        h["Content-Encoding"] = "gzip"
    h.update(headers or {})
    return (server or State.server).request("POST", path, body=body, headers=h)


def flame(ptype, selector, server=None):
    names, levels, total = ht.select_merge(server or State.server, ptype, selector, *window())
    return ht.fg_summary(names, levels, total)


def values(name, selector, server=None):
    return sorted(ht.label_values(server or State.server, name, selector, *window()))


def scaled(summary, k):
    return {"total": summary["total"] * k, "by_path": {p: v * k for p, v in summary["by_path"].items()},
            "by_name": {n: v * k for n, v in summary["by_name"].items()}}


def read_pprof(kind, stem):
    with open(ht.testdata_path(kind, stem), "rb") as f:
        return gzip.decompress(f.read())


def small_request(service_attrs, samples, dictionary=True):
    """A hand-made request: functions main/a/b, stacks [a, main] and [b, main]; samples are
    (stack 1|2, value, [(attribute key, value)]); CPU samples/count with a 10 ms period."""
    req = State.pb.otlp.ExportProfilesServiceRequest()
    if dictionary:
        d = req.dictionary
        d.string_table.extend(["", "main", "a", "b", "samples", "count", "cpu", "nanoseconds"])
        for t in (d.mapping_table, d.location_table, d.function_table, d.link_table, d.attribute_table, d.stack_table):
            t.add()
        for name in (1, 2, 3):
            d.function_table.add(name_strindex=name)
            d.location_table.add().lines.add(function_index=name)
        d.stack_table.add().location_indices.extend([2, 1])
        d.stack_table.add().location_indices.extend([3, 1])
    rp = req.resource_profiles.add()
    for k, v in service_attrs:
        rp.resource.attributes.add(key=k).value.string_value = v
    p = rp.scope_profiles.add().profiles.add(time_unix_nano=T0 * 10**9, period=10_000_000)
    p.sample_type.type_strindex, p.sample_type.unit_strindex = 4, 5
    p.period_type.type_strindex, p.period_type.unit_strindex = 6, 7
    for stack, value, attrs in samples:
        s = p.samples.add(stack_index=stack, values=[value])
        for k, v in attrs:
            d = req.dictionary
            if k not in d.string_table:
                d.string_table.append(k)
            a = d.attribute_table.add(key_strindex=list(d.string_table).index(k))
            a.value.string_value = v
            s.attribute_indices.append(len(d.attribute_table) - 1)
    return req


class Otlp(unittest.TestCase):
    def assertOk(self, resp, codec="proto"):
        st, h, body = resp
        self.assertEqual(st, 200, error_text(body))
        if codec == "json":
            self.assertTrue(h.get("content-type", "").startswith("application/json"), h)
            self.assertEqual(json.loads(body), {})
        else:
            self.assertEqual(h.get("content-type"), "application/x-protobuf")
            State.pb.otlp.ExportProfilesServiceResponse().ParseFromString(body)  # must parse
            self.assertEqual(body, b"")

    def assertRejected(self, resp, status, *needles):
        st, _, body = resp
        self.assertEqual(st, status, error_text(body))
        msg = error_text(body)
        for n in needles:
            self.assertIn(n, msg)

    def check_real_profile(self, kind, stem, push_name):
        """Pushes the pprof through push.v1 Push and its OTLP form five ways; compares every
        profile type's flame graph."""
        raw = read_pprof(kind, stem)
        src = State.pb.profile.Profile()
        src.ParseFromString(raw)
        st = src.string_table
        tag = stem.replace(".", "-")
        pprof_svc = "pprof-" + tag
        req = ht.push_request_proto([("__name__", push_name), ("service_name", pprof_svc)],
                                    ht.gz_profile_with_time(ht.testdata_path(kind, stem), T0 * 10**9), ht.new_id())
        code, _, body = State.server.connect_proto("/push.v1.PusherService/Push", req)
        self.assertEqual(code, 200, error_text(body))
        ways = [("proto", False, ROUTE), ("proto", True, ROUTE), ("json", False, ROUTE), ("json", True, ROUTE),
                ("proto", False, GRPC_PATH)]
        for codec, gz, path in ways:
            svc = "otlp-%s-%s-%s-%s" % (tag, codec, "gz" if gz else "plain", "grpcpath" if path == GRPC_PATH else "route")
            oreq = otlp_convert.pprof_to_otlp(State.pb, raw, [("service.name", svc), ("deployment.environment", "test")],
                                              [("otel.scope.name", "convert")], time_ns=T0 * 10**9)
            self.assertOk(post(oreq, codec, gz, path=path), codec)
            ptype, ptu = st[src.period_type.type], st[src.period_type.unit]
            want_types = []
            for vt in src.sample_type:
                t, u = st[vt.type], st[vt.unit]
                pprof_ptype = "%s:%s:%s:%s:%s" % (push_name, t, u, ptype, ptu)
                want = flame(pprof_ptype, '{service_name="%s"}' % pprof_svc)
                if (t, u, ptype, ptu) == ("samples", "count", "cpu", "nanoseconds") and src.period:
                    otlp_ptype = CPU  # samples/count become cpu/nanoseconds, times the period
                    want = scaled(want, src.period)
                else:
                    name = (ptype if src.period else "") or "process_cpu"
                    if name == "wall" and t == "cpu":
                        name = "process_cpu"  # Pyroscope's default relabel rule, as for any push
                    otlp_ptype = "%s:%s:%s:%s:%s" % (name, t, u, ptype, ptu)
                want_types.append(otlp_ptype)
                self.assertGreater(want["total"], 0, pprof_ptype)
                got = flame(otlp_ptype, '{service_name="%s"}' % svc)
                diff = ht.summary_diff(want, got)
                self.assertEqual(diff, [], "%s %s vs %s: %s" % (svc, otlp_ptype, pprof_ptype, "; ".join(diff)))
            sel = '{service_name="%s"}' % svc
            self.assertEqual(values("__profile_type__", sel), sorted(set(want_types)))
            self.assertEqual(values("__otel__", sel), ["true"])
            self.assertEqual(values("__delta__", sel), ["false"])
            self.assertEqual(values("service.name", sel), [svc])
            self.assertEqual(values("deployment.environment", sel), ["test"])
            self.assertEqual(values("otel.scope.name", sel), ["convert"])

    def test_go_cpu_profile_matches_its_pprof(self):
        self.check_real_profile("go", "workpool.cpu.000", "process_cpu")

    def test_go_heap_profile_matches_its_pprof(self):
        self.check_real_profile("go", "workpool.heap", "memory")

    def test_node_cpu_profile_matches_its_pprof(self):
        self.check_real_profile("node", "node.cpu.000", "process_cpu")

    def test_profile_types_and_label_names(self):
        self.assertOk(post(small_request([("service.name", "types-svc")], [(1, 1, [])])))
        st, _, body = State.server.connect_json(
            "/querier.v1.QuerierService/ProfileTypes", {"start": str(window()[0]), "end": str(window()[1])})
        self.assertEqual(st, 200, error_text(body))
        ids = [t["ID"] for t in json.loads(body).get("profileTypes", [])]
        self.assertIn(CPU, ids)
        st, _, body = State.server.connect_json(
            "/querier.v1.QuerierService/LabelNames",
            {"matchers": ['{service_name="types-svc"}'], "start": str(window()[0]), "end": str(window()[1])})
        self.assertEqual(st, 200, error_text(body))
        names = json.loads(body).get("names", [])
        self.assertIn("service_name", names)
        self.assertIn("__otel__", names)

    def test_sample_attributes_services_and_fallbacks(self):
        req = small_request(
            [("service.name", "attrs-svc"), ("process.executable.name", "ignored")],
            [(1, 3, [("thread.name", "t-a")]), (2, 5, [("thread.name", "t-b")]), (2, 7, [("service.name", "attrs-other")])])
        self.assertOk(post(req, "json", True), "json")
        self.assertEqual(values("thread.name", '{service_name="attrs-svc"}'), ["t-a", "t-b"])
        self.assertEqual(flame(CPU, '{service_name="attrs-svc", "thread.name"="t-a"}')["by_path"], {"main/a": 30_000_000})
        self.assertEqual(flame(CPU, '{service_name="attrs-svc"}')["by_path"], {"main/a": 30_000_000, "main/b": 50_000_000})
        self.assertEqual(flame(CPU, '{service_name="attrs-other"}')["by_path"], {"main/b": 70_000_000})
        self.assertEqual(values("thread.name", '{service_name="attrs-other"}'), [])
        self.assertOk(post(small_request([("process.executable.name", "nginx")], [(1, 1, [])])))
        self.assertEqual(flame(CPU, '{service_name="unknown_service:nginx"}')["total"], 10_000_000)

    def test_bad_requests(self):
        good = small_request([("service.name", "bad-svc")], [(1, 1, [])])
        body = good.SerializeToString()
        self.assertRejected(State.server.request("POST", ROUTE, body=body, headers={"Content-Type": "text/plain"}),
                            415, "Content-Type", "application/x-protobuf")
        self.assertRejected(State.server.request("POST", GRPC_PATH, body=body, headers={"Content-Type": "application/grpc"}),
                            415, "gRPC")
        self.assertRejected(post(small_request([("service.name", "bad-svc")], [(1, 1, [])], dictionary=False)),
                            400, "no dictionary")
        self.assertRejected(post(small_request([("service.name", "bad-svc")], [(1, 1, [])], dictionary=False), "json"),
                            400, "no dictionary")
        bad = small_request([("service.name", "bad-svc")], [(9, 1, [])])
        self.assertRejected(post(bad), 400, "samples[0]", "stack_index 9 is out of range of dictionary.stack_table")
        self.assertRejected(post(bad, "json", True), 400, "stack_index 9 is out of range of dictionary.stack_table")
        bad = small_request([("service.name", "bad-svc")], [(1, 1, [])])
        bad.dictionary.location_table[2].lines[0].function_index = 42
        self.assertRejected(post(bad), 400, "function_index 42 is out of range of dictionary.function_table")
        self.assertRejected(State.server.request("POST", ROUTE, body=body, headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}), 400, "not gzip")
        self.assertRejected(State.server.request("POST", ROUTE, body=b"\x0a\x05\x01", headers={
            "Content-Type": "application/x-protobuf"}), 400, "runs past the end")
        self.assertRejected(State.server.request("POST", ROUTE, body=b"{\"resourceProfiles\": 3}", headers={
            "Content-Type": "application/json"}), 400, "JSON")
        self.assertEqual(State.server.request("GET", ROUTE)[0], 405)
        st, _, body = State.server.request("GET", "/metrics")
        for code in ("400", "415"):
            self.assertIn('hearth_http_requests_total{code="%s",route="%s"}' % (code, ROUTE), body.decode())
        self.assertEqual(values("service_name", '{service_name="bad-svc"}'), [])
        self.assertTrue(State.server.alive())

    def test_limits_tenancy_and_oversize(self):
        srv = ht.Server("otlp-limits", os.path.join(ht.ctx.tmp, "otlp-limits"), {
            "server": ["multitenancy = true", 'max_body_bytes = "64KiB"'],
            "limits": ['max_profile_bytes = "256KiB"', "max_otlp_profiles = 2", "ingestion_rate_profiles = 1", "ingestion_burst_profiles = 3"],
        }, early_reply=True)
        srv.start()
        try:
            req = small_request([("service.name", "tenant-svc")], [(1, 1, [])])
            self.assertRejected(post(req, server=srv), 401)
            self.assertOk(post(req, server=srv, headers={"X-Scope-OrgID": "t1"}))
            st, _, body = srv.connect_json("/querier.v1.QuerierService/LabelValues", {
                "name": "service_name", "start": str(window()[0]), "end": str(window()[1])})
            self.assertEqual(st, 401, error_text(body))
            # Too large as sent, and too large once inflated.
            big = small_request([("service.name", "tenant-svc"), ("pad", "x" * 300_000)], [(1, 1, [])])
            self.assertRejected(post(big, server=srv, headers={"X-Scope-OrgID": "t1"}), 413, "max_body_bytes")
            self.assertLess(len(gzip.compress(big.SerializeToString())), 64 * 1024)
            self.assertRejected(post(big, gz=True, server=srv, headers={"X-Scope-OrgID": "t1"}), 413, "max_profile_bytes")
            # Three services in one profile are three profiles: over max_otlp_profiles = 2.
            many = small_request([("service.name", "tenant-svc")], [(1, 1, [("service.name", "m%d" % i)]) for i in range(3)])
            self.assertRejected(post(many, server=srv, headers={"X-Scope-OrgID": "t1"}), 413, "limits.max_otlp_profiles")
            # Each request holds one profile: past the burst of 3 (and at most one refilled), 429.
            answers = [post(req, server=srv, headers={"X-Scope-OrgID": "t1"}) for _ in range(6)]
            codes = [a[0] for a in answers]
            self.assertEqual(codes[-1], 429, codes)
            self.assertLessEqual(codes.count(200), 3, codes)
            self.assertIn("limits.ingestion_rate_profiles=1/s", error_text(answers[-1][2]))
            self.assertIsNotNone(answers[-1][1].get("retry-after"))
            self.assertOk(post(req, server=srv, headers={"X-Scope-OrgID": "t2"}))
            m = srv.metrics()
            self.assertGreaterEqual(m.get("hearth_ingest_rate_limited_total", 0), 1)
        finally:
            srv.kill()

    def test_stack_depth_limit_rejects_or_truncates(self):
        raw = read_pprof("go", "workpool.cpu.000")  # stacks of up to 19 locations
        src = State.pb.profile.Profile()
        src.ParseFromString(raw)
        types_ = [src.string_table[t.type] for t in src.sample_type]
        deep = next(i for i, smp in enumerate(src.sample) if len(smp.location_id) > 8)
        want = "sample %d has a stack of %d frames, over limits.max_stack_depth = 8" % (
            deep, len(src.sample[deep].location_id))
        req = otlp_convert.pprof_to_otlp(State.pb, raw, [("service.name", "deep")], time_ns=T0 * 10**9)
        for policy in ("reject", "truncate"):
            srv = ht.Server("otlp-depth-" + policy, os.path.join(ht.ctx.tmp, "otlp-depth-" + policy), {
                "limits": ["max_stack_depth = 8", 'stack_depth_policy = "%s"' % policy],
            })
            srv.start()
            try:
                if policy == "reject":
                    for codec, gz in (("proto", False), ("json", True)):
                        self.assertRejected(post(req, codec, gz, server=srv), 400, want)
                    self.assertEqual(values("service_name", "{}", server=srv), [])
                    continue
                self.assertOk(post(req, server=srv))
                # samples/count become cpu/nanoseconds times the period; cpu/nanoseconds stay.
                cut = ht.pprof_summary(raw, types_.index("samples"), 8)
                got = flame(CPU, '{service_name="deep"}', server=srv)
                self.assertEqual(ht.summary_diff(scaled(cut, src.period), got), [])
                cut = ht.pprof_summary(raw, types_.index("cpu"), 8)
                got = flame("cpu:cpu:nanoseconds:cpu:nanoseconds", '{service_name="deep"}', server=srv)
                self.assertEqual(ht.summary_diff(cut, got), [])
                self.assertNotEqual(ht.summary_diff(ht.pprof_summary(raw, types_.index("cpu")), got), [])
            finally:
                srv.kill()


def setup():
    import otlp_profiles_service_pb2  # generated by hearthtest.generate_protos from cluster/proto

    State.pb = types.SimpleNamespace(profile=ht.ctx.pb.profile, otlp=otlp_profiles_service_pb2)
    State.server = ht.Server("otlp", os.path.join(ht.ctx.tmp, "otlp-data"))
    State.server.start()
    return 0


if __name__ == "__main__":
    sys.exit(ht.run_main("otlp", [Otlp], __doc__, setup=setup))
