#!/usr/bin/env python3
"""POST /ingest in every format Hearth reads, end to end against a real hearth on 127.0.0.1:

- folded text (`a;b;c 42`, the default format) and `format=lines`, with the profile type taken from
  the app name's suffix and CPU/wall counts scaled by sampleRate (pyroscope-api.md §3.3);
- the Go SDK's multipart pprof form with `sample_type_config` (display names pick `__name__`), and
  `prev_profile` rejected with 422 as Pyroscope does;
- `format=jfr`: a recording of tests/data/jfr/Burn.java made here with OpenJDK 17, pushed raw and
  as the Java agent's multipart form (gzipped `jfr` part, `labels` part); its flame graphs must
  match what `jfr print --json` says about the same file, per leaf frame;
- malformed input of each format -> 400/422 with a message naming what was wrong.

usage: test_ingest_formats.py PATH/TO/hearth [NAME_SUBSTRING...]
Environment: as the other integration tests, plus HEARTH_JAVA_HOME (default
/usr/lib/jvm/java-17-openjdk-amd64).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_ingest_formats")

import gzip  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402


from hearthtest import error_text  # noqa: E402

JAVA_HOME = os.environ.get("HEARTH_JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64"
T0 = int(time.time()) - 600  # seconds; every push of this file is stamped T0
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


class State:
    server = None
    jfr = None  # bytes of the recording
    jfr_events = None  # `jfr print --json` events


def ingest(params, body, ctype="application/octet-stream"):
    q = {"from": str(T0), "until": str(T0 + 10)}
    q.update(params)
    return State.server.request("POST", "/ingest?" + urllib.parse.urlencode(q), body=body, headers={"Content-Type": ctype})


def flame(ptype, selector):
    """-> fg_summary of the merged flame graph around T0."""
    names, levels, total = ht.select_merge(State.server, ptype, selector, (T0 - 60) * 1000, (T0 + 60) * 1000)
    return ht.fg_summary(names, levels, total)


def profile_types(svc):
    return sorted(ht.label_values(State.server, "__profile_type__", '{service_name="%s"}' % svc, (T0 - 60) * 1000, (T0 + 60) * 1000))


def make_recording(tmp):
    """Compiles and runs Burn.java under JFR -> (jfr bytes, jfr print --json events)."""
    src = os.path.join(ht.SOURCE_ROOT, "tests", "data", "jfr")
    out = os.path.join(tmp, "jfr")
    os.makedirs(out, exist_ok=True)
    binp = os.path.join(JAVA_HOME, "bin")
    subprocess.run([os.path.join(binp, "javac"), "-d", out, os.path.join(src, "Burn.java")], check=True, timeout=300)
    rec = os.path.join(out, "rec.jfr")
    subprocess.run(
        [os.path.join(binp, "java"), "-XX:StartFlightRecording=filename=%s,settings=%s" % (rec, os.path.join(src, "hearth.jfc")),
         "-cp", out, "Burn", "2500"],
        check=True, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    events = ("jdk.ExecutionSample,jdk.ObjectAllocationInNewTLAB,jdk.ObjectAllocationOutsideTLAB,"
              "jdk.ObjectAllocationSample,jdk.JavaMonitorEnter,jdk.ThreadPark")
    js = subprocess.run([os.path.join(binp, "jfr"), "print", "--json", "--stack-depth", "1", "--events", events, rec],
                        check=True, timeout=300, capture_output=True).stdout
    with open(rec, "rb") as f:
        return f.read(), json.loads(js)["recording"]["events"]


def iso_ns(s):
    """ISO-8601 duration 'PT0.0125S' / 'PT1M2S' -> ns."""
    assert s.startswith("PT"), s
    ns, num = 0, ""
    for c in s[2:]:
        if c.isdigit() or c == ".":
            num += c
            continue
        whole, _, frac = num.partition(".")
        unit = {"H": 3600, "M": 60, "S": 1}[c]
        ns += (int(whole or 0) * 1_000_000_000 + int((frac + "000000000")[:9])) * unit
        num = ""
    return ns


def leaf(values):
    st = values.get("stackTrace")
    if not st or not st.get("frames"):
        return None
    m = st["frames"][0]["method"]
    cls = m["type"]["name"]
    if "$$Lambda$" in cls:  # generated classes are merged, as Pyroscope does
        cls = cls[: cls.index("$$Lambda$")] + "$$Lambda_"
    return cls + "." + m["name"]


def expected_by_leaf(event, amount=None, scale=1, skip_sleeping=False):
    """{leaf frame: count*scale} or, with amount (a function of the event's values), {leaf: sum}."""
    out = {}
    for ev in State.jfr_events:
        if ev["type"] != event:
            continue
        v = ev["values"]
        if skip_sleeping and v.get("state") == "STATE_SLEEPING":
            continue
        name = leaf(v)
        if name is None:
            continue
        out[name] = out.get(name, 0) + (amount(v) if amount else scale)
    return out


class IngestFormats(unittest.TestCase):
    def assertRejected(self, st, body, statuses, *words):
        self.assertIn(st, statuses, error_text(body))
        msg = json.loads(body).get("message", "")
        for w in words:
            self.assertIn(w, msg)

    # ---- folded / lines

    def test_folded_cpu_scaled_by_sample_rate(self):
        body = b"main;work;hot 3\nmain;work 2\r\nmain;work;hot 1\n\nmain;idle 0\n"
        st, _, resp = ingest({"name": "fold-cpu.cpu{env=t}", "spyName": "rbspy", "sampleRate": "50",
                              "units": "samples", "aggregationType": "sum"}, body, "text/plain")
        self.assertEqual(st, 200, error_text(resp))
        self.assertEqual(profile_types("fold-cpu"), [CPU])
        f = flame(CPU, '{service_name="fold-cpu",env="t",pyroscope_spy="rbspy"}')
        self.assertEqual(f["by_path"], {"main/work/hot": 4 * 20_000_000, "main/work": 2 * 20_000_000})

    def test_folded_is_the_default_format_and_wall(self):
        st, _, resp = ingest({"name": "fold-wall.wall"}, b"a;b 7\n")
        self.assertEqual(st, 200, error_text(resp))
        self.assertEqual(profile_types("fold-wall"), ["wall:wall:nanoseconds:cpu:nanoseconds"])
        f = flame("wall:wall:nanoseconds:cpu:nanoseconds", '{service_name="fold-wall"}')
        self.assertEqual(f["by_path"], {"a/b": 7 * 10_000_000})

    def test_lines_count_each_line(self):
        body = b"main;alloc\nmain;alloc\nmain\nmain;alloc\n"
        st, _, resp = ingest({"name": "lines-mem.alloc_objects{service_name=lines-svc}", "format": "lines"}, body)
        self.assertEqual(st, 200, error_text(resp))
        # an explicit service_name wins; the app name goes to app_name
        self.assertEqual(profile_types("lines-svc"), ["memory:alloc_objects:count::"])
        f = flame("memory:alloc_objects:count::", '{service_name="lines-svc",app_name="lines-mem"}')
        self.assertEqual(f["by_path"], {"main/alloc": 3, "main": 1})

    def test_folded_malformed(self):
        st, _, body = ingest({"name": "bad.cpu"}, b"a;b 1\na;b x\n")
        self.assertRejected(st, body, (422,), "line 2", "sample count")
        st, _, body = ingest({"name": "bad.cpu"}, b"a;;b 1\n")
        self.assertRejected(st, body, (422,), "line 1", "empty")
        st, _, body = ingest({"name": "bad.cpu"}, b"just-a-frame\n")
        self.assertRejected(st, body, (422,), "line 1", "no sample count")
        st, _, body = ingest({"name": "bad.cpu"}, b"a;" * 3000 + b"b 1\n")
        self.assertRejected(st, body, (422,), "line 1", "over the limit of 4096")  # limits.max_text_line_bytes
        st, _, body = ingest({"name": "bad.nosuchtype"}, b"a 1\n")
        self.assertRejected(st, body, (400,), "unknown profile type", "nosuchtype")
        st, _, body = ingest({"name": "bad.cpu", "format": "speedscope"}, b"{}")
        self.assertRejected(st, body, (400, 415, 422), "speedscope")

    # ---- multipart pprof

    def pprof_form(self, extra=()):
        with open(os.path.join(ht.TESTDATA, "go", "workpool.block.pb.gz"), "rb") as f:
            gz = f.read()
        return ht.multipart([("profile", "profile.pprof", "application/octet-stream", gz)] + list(extra))

    def test_multipart_sample_type_config_renames(self):
        cfg = json.dumps({"contentions": {"units": "lock_samples", "display-name": "block_count"},
                          "delay": {"units": "lock_nanoseconds", "display-name": "block_duration"}}).encode()
        ctype, body = self.pprof_form([("sample_type_config", "sample_type_config.json", "application/json", cfg)])
        st, _, resp = ingest({"name": "stc-block", "spyName": "gospy"}, body, ctype)
        self.assertEqual(st, 200, error_text(resp))
        self.assertEqual(profile_types("stc-block"), ["block:contentions:count:contentions:count",
                                                      "block:delay:nanoseconds:contentions:count"])
        # without a config Pyroscope's default table names a Go block profile `mutex`
        ctype, body = self.pprof_form()
        st, _, resp = ingest({"name": "stc-none"}, body, ctype)
        self.assertEqual(st, 200, error_text(resp))
        self.assertEqual(profile_types("stc-none"), ["mutex:contentions:count:contentions:count",
                                                     "mutex:delay:nanoseconds:contentions:count"])

    def test_multipart_bad_sample_type_config_and_prev_profile(self):
        ctype, body = self.pprof_form([("sample_type_config", "sample_type_config.json", "application/json", b"{not json")])
        st, _, resp = ingest({"name": "stc-bad"}, body, ctype)
        self.assertRejected(st, resp, (422,), "sample_type_config")
        with open(os.path.join(ht.TESTDATA, "go", "workpool.block.pb.gz"), "rb") as f:
            prev = f.read()
        ctype, body = self.pprof_form([("prev_profile", "profile.pprof", "application/octet-stream", prev)])
        st, _, resp = ingest({"name": "stc-prev"}, body, ctype)
        self.assertRejected(st, resp, (422,), "prev_profile")

    # ---- JFR

    def check_jfr_service(self, svc):
        types = profile_types(svc)
        for want in (CPU, "memory:alloc_outside_tlab_objects:count:space:bytes",
                     "memory:alloc_outside_tlab_bytes:bytes:space:bytes",
                     "mutex:contentions:count:mutex:count", "mutex:delay:nanoseconds:mutex:count",
                     "block:contentions:count:block:count", "block:delay:nanoseconds:block:count"):
            self.assertIn(want, types)
        sel = '{service_name="%s"}' % svc
        checks = [
            (CPU, expected_by_leaf("jdk.ExecutionSample", scale=10_000_000, skip_sleeping=True)),
            ("memory:alloc_outside_tlab_objects:count:space:bytes", expected_by_leaf("jdk.ObjectAllocationOutsideTLAB")),
            ("memory:alloc_outside_tlab_bytes:bytes:space:bytes",
             expected_by_leaf("jdk.ObjectAllocationOutsideTLAB", amount=lambda v: v["allocationSize"])),
            ("mutex:contentions:count:mutex:count", expected_by_leaf("jdk.JavaMonitorEnter")),
            ("mutex:delay:nanoseconds:mutex:count", expected_by_leaf("jdk.JavaMonitorEnter", amount=lambda v: iso_ns(v["duration"]))),
            ("block:delay:nanoseconds:block:count", expected_by_leaf("jdk.ThreadPark", amount=lambda v: iso_ns(v["duration"]))),
        ]
        for ptype, want in checks:
            got = flame(ptype, sel)["by_name"]
            self.assertEqual(got, want, ptype)

    def test_jfr_raw_body(self):
        st, _, resp = ingest({"name": "jfr-raw{env=t}", "format": "jfr", "spyName": "javaspy", "sampleRate": "100"}, State.jfr)
        self.assertEqual(st, 200, error_text(resp))
        self.check_jfr_service("jfr-raw")

    def test_jfr_agent_multipart(self):
        # LabelsSnapshot{strings {1: "route"}}: valid; JDK events carry no contextId to use it
        snapshot = b"\x12\x09\x08\x01\x12\x05route"
        ctype, body = ht.multipart([("jfr", "jfr", "application/octet-stream", gzip.compress(State.jfr)),
                                 ("labels", "labels", "application/octet-stream", gzip.compress(snapshot))])
        st, _, resp = ingest({"name": "jfr-agent", "format": "jfr", "spyName": "javaspy"}, body, ctype)
        self.assertEqual(st, 200, error_text(resp))
        self.check_jfr_service("jfr-agent")
        vals = ht.label_values(State.server, "pyroscope_spy", '{service_name="jfr-agent"}', (T0 - 60) * 1000, (T0 + 60) * 1000)
        self.assertEqual(vals, ["javaspy"])

    def test_jfr_malformed(self):
        st, _, body = ingest({"name": "jfr-bad", "format": "jfr"}, b"not a flight recording at all, sorry" * 4)
        self.assertRejected(st, body, (422,), "jfr", "magic")
        st, _, body = ingest({"name": "jfr-bad", "format": "jfr"}, State.jfr[: len(State.jfr) // 2])
        self.assertRejected(st, body, (422,), "jfr: chunk 0")
        ctype, form = ht.multipart([("labels", "labels", "application/octet-stream", b"")])
        st, _, body = ingest({"name": "jfr-bad", "format": "jfr"}, form, ctype)
        self.assertRejected(st, body, (422,), "jfr")
        ctype, form = ht.multipart([("jfr", "jfr", "application/octet-stream", State.jfr),
                                 ("labels", "labels", "application/octet-stream", gzip.compress(b"\x0a\x05\x08"))])
        st, _, body = ingest({"name": "jfr-bad", "format": "jfr"}, form, ctype)
        self.assertRejected(st, body, (422,), "jfr labels", "LabelsSnapshot")
        self.assertTrue(State.server.alive())


def setup():
    State.jfr, State.jfr_events = make_recording(ht.ctx.tmp)
    State.server = ht.Server("formats", os.path.join(ht.ctx.tmp, "formats-data"),
                             {"limits": ['max_text_line_bytes = "4KiB"', "max_jfr_stack_depth = 2048"]})
    State.server.start()
    return 0


if __name__ == "__main__":
    sys.exit(ht.run_main("ingest_formats", [IngestFormats], __doc__, setup=setup))
