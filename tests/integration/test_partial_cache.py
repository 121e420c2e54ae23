#!/usr/bin/env python3
"""Integration test of the readers' flame-graph partial cache (query.partial_cache_bytes): real Go
CPU profiles pushed to two real hearth processes on 127.0.0.1, one with the cache (default size)
and one without (partial_cache_bytes = 0), sealed into segment files. The same
SelectMergeStacktraces and /pyroscope/render asked twice answer byte-identical bodies, the second
time from the cache (hearth_query_partial_cache_hits_total); another selector, or a range that cuts
the blocks, is not answered from the cache; and every answer equals the uncached server's, before
and after a compaction (L0 -> L1 -> L2 + rollups). Both servers read the sealed blocks through
frame maps (hearth_query_frame_dict_*).

usage: test_partial_cache.py PATH/TO/hearth [NAME_SUBSTRING...]
(the cases share the two servers and build on each other in name order)

Environment: HEARTH_TESTDATA, HEARTH_SOURCE_ROOT, HEARTH_TEST_KEEP=1, HEARTH_TEST_JUNIT=FILE.
Every server binds 127.0.0.1 port 0, runs on its own data dir under a temp dir, and is killed by
its pid.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthtest as ht  # noqa: E402

ht.ensure_system_python("test_partial_cache")

import time  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402

W = 600  # the l2_window, seconds
# deletion_delay 0s: the cases read the segment directory, which then holds no replaced file
COMPACTION = ['enabled = true', 'interval = "1h"', 'l1_window = "1m"', 'l2_window = "10m"', 'grace = "0s"',
              'deletion_delay = "0s"']
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
HITS = "hearth_query_partial_cache_hits_total"
MISSES = "hearth_query_partial_cache_misses_total"
BYTES = "hearth_query_partial_cache_bytes"
SERVICES = {"pc-go": "workpool", "pc-db": "mapindex"}


class S:  # state shared by the cases
    cached = None
    plain = None
    w0 = None
    end = None


def push(srv, svc, stem, t_s):
    raw = ht.gz_profile_with_time(ht.testdata_path("go", stem), t_s * 1000000000)
    labels = [("__name__", "process_cpu"), ("service_name", svc)]
    req = ht.push_request_proto(labels, raw, ht.new_id())
    st, _, body = srv.connect_proto("/push.v1.PusherService/Push", req)
    if st != 200:
        raise AssertionError("Push %s %s t=%d: HTTP %d %s" % (svc, stem, t_s, st, ht.error_text(body)))


def smst(srv, selector, start_s, end_s):
    """SelectMergeStacktraces over proto -> the raw response body."""
    st, _, body = ht.smst_request(srv, "proto", CPU, selector, start_s * 1000, end_s * 1000, ht.MAX_NODES)
    if st != 200:
        raise AssertionError("SelectMergeStacktraces %s: HTTP %d %s" % (selector, st, ht.error_text(body)))
    return body


def render(srv, selector, start_s, end_s):
    """/pyroscope/render (flame graph + timeline) -> the raw JSON body."""
    q = {"query": CPU + selector, "from": str(start_s), "until": str(end_s), "format": "json", "max-nodes": str(ht.MAX_NODES)}
    st, _, body = srv.request("GET", "/pyroscope/render?" + urllib.parse.urlencode(q))
    if st != 200:
        raise AssertionError("render %s: HTTP %d %s" % (selector, st, ht.error_text(body)))
    return body


def counters(srv):
    m = srv.metrics()
    return m.get(HITS, 0.0), m.get(MISSES, 0.0)


class TestPartialCache(unittest.TestCase):
    maxDiff = None

    def servers(self):
        if not (S.cached and S.cached.alive() and S.plain and S.plain.alive()):
            self.skipTest("servers not running (an earlier case failed)")
        return S.cached, S.plain

    def delta(self, srv, fn):
        """Runs fn(); -> (its result, hits added, misses added)."""
        h0, m0 = counters(srv)
        out = fn()
        h1, m1 = counters(srv)
        return out, h1 - h0, m1 - m0

    def test_1_ingest_and_seal(self):
        base = {"storage": ["head_max_age = 1"], "compaction": COMPACTION}
        S.cached = ht.Server("cached", os.path.join(ht.ctx.tmp, "data-cached"), base)
        S.plain = ht.Server("plain", os.path.join(ht.ctx.tmp, "data-plain"), dict(base, query=["partial_cache_bytes = 0"]))
        S.cached.start()
        S.plain.start()
        now = int(time.time())
        S.w0 = w0 = now // W * W - 3 * W  # two closed 10-minute windows of data, then a gap
        S.end = now + 600
        # Three sealed batches; each holds profiles near the start of window 0 and in window 1, so
        # every block spans [w0 + 10.., w0 + 700..] and a range starting at w0 + 100 cuts them all.
        for j in range(3):
            for srv in (S.cached, S.plain):
                for i, (svc, prog) in enumerate(sorted(SERVICES.items())):
                    push(srv, svc, "%s.cpu.%03d" % (prog, j), w0 + 10 + 20 * j + i)
                    push(srv, svc, "%s.cpu.%03d" % (prog, (j + 1) % 3), w0 + W + 100 + 20 * j + i)
                srv.wait_heads_sealed()
        self.assertGreaterEqual(len(S.cached.segment_files()), 3, S.cached.segment_files())
        self.assertEqual(counters(S.cached), (0.0, 0.0))

    def check_repeat(self, label, fn):
        """fn(srv) twice on the cached server: equal bodies, the second all from the cache; and equal
        to the uncached server's body. -> (misses of the first call, hits of the second)."""
        cached, plain = self.servers()
        a, h1, m1 = self.delta(cached, lambda: fn(cached))
        b, h2, m2 = self.delta(cached, lambda: fn(cached))
        c = fn(plain)
        self.assertEqual(a, b, "%s: the repeated answer differs" % label)
        self.assertEqual(a, c, "%s: the cached server's answer differs from the uncached server's" % label)
        self.assertGreater(m1, 0, "%s: the first query evaluated no cacheable block" % label)
        self.assertEqual((h2, m2), (m1 + h1, 0.0), "%s: the second query must hit for every block" % label)
        return m1, h2

    def test_2_repeated_queries_hit_and_answer_the_same(self):
        cached, plain = self.servers()
        sel = '{service_name="pc-go"}'
        self.check_repeat("SelectMergeStacktraces", lambda s: smst(s, sel, S.w0 - 60, S.end))
        # render asks for a timeline (want_points): another key, then hits as well
        self.check_repeat("render", lambda s: render(s, sel, S.w0 - 60, S.end))
        self.assertGreater(cached.metrics().get(BYTES, 0), 0)
        # A wider range covering the same blocks shares their entries.
        _, h, m = self.delta(cached, lambda: smst(cached, sel, S.w0 - 3600, S.end + 3600))
        self.assertEqual(m, 0.0, "a covering range must reuse the blocks' entries")
        self.assertGreater(h, 0)
        self.assertEqual(counters(plain), (0.0, 0.0), "partial_cache_bytes = 0 must disable the cache")
        self.assertEqual(plain.metrics().get(BYTES, 0), 0)
        # Both read the sealed blocks through frame maps (docs/design/query.md), cache or not.
        for srv in (cached, plain):
            m = srv.metrics()
            self.assertGreater(m.get("hearth_query_frame_dict_paths", 0), 100)
            self.assertGreater(m.get("hearth_query_frame_dict_bytes", 0), 0)
            self.assertEqual(m.get("hearth_query_frame_dict_resets_total", 0), 0)

    def test_3_other_selector_and_cutting_range_miss(self):
        cached, plain = self.servers()
        # Another selector: evaluated, never answered from the first one's entries.
        body, h, m = self.delta(cached, lambda: smst(cached, '{service_name="pc-db"}', S.w0 - 60, S.end))
        self.assertEqual(h, 0.0, "another selector must not hit")
        self.assertGreater(m, 0.0)
        self.assertEqual(body, smst(plain, '{service_name="pc-db"}', S.w0 - 60, S.end))
        # A range that cuts every block: not cacheable (no hit, no miss), and still exact.
        for _ in range(2):
            body, h, m = self.delta(cached, lambda: smst(cached, '{service_name="pc-go"}', S.w0 + 100, S.end))
            self.assertEqual((h, m), (0.0, 0.0), "blocks cut by the range must bypass the cache")
            self.assertEqual(body, smst(plain, '{service_name="pc-go"}', S.w0 + 100, S.end))
        # ... and differs from the whole range's answer (the cut-off profiles are missing).
        self.assertNotEqual(body, smst(cached, '{service_name="pc-go"}', S.w0 - 60, S.end))

    def test_4_after_compaction_answers_equal_the_uncached_server(self):
        cached, plain = self.servers()
        queries = [
            ("smst pc-go", lambda s: smst(s, '{service_name="pc-go"}', S.w0 - 60, S.end)),
            ("smst all", lambda s: smst(s, "{}", S.w0 - 60, S.end)),
            ("render pc-go", lambda s: render(s, '{service_name="pc-go"}', S.w0 - 60, S.end)),
            ("render all 24 h", lambda s: render(s, "{}", S.end - 86400, S.end)),
            ("smst all 24 h", lambda s: smst(s, "{}", S.end - 86400, S.end)),
        ]
        before = {label: fn(plain) for label, fn in queries}
        for label, fn in queries:  # warm the cache with the blocks compaction is about to replace
            self.assertEqual(fn(cached), before[label], label)
        files = cached.segment_files()
        for srv in (cached, plain):
            _, total = srv.compact_until_idle()
            self.assertGreater(total.get("jobs", 0), 0, "%s: nothing compacted" % srv.name)
        after = cached.segment_files()
        self.assertFalse(set(files) & set(after), "every block was rewritten: %r / %r" % (files, after))
        self.assertTrue(any(os.path.basename(f).startswith("L2-") for f in after), after)
        for label, fn in queries:
            self.assertEqual(before[label], fn(plain), "%s: compaction changed the uncached answer" % label)
            self.check_repeat(label + " after compaction", fn)

    @classmethod
    def tearDownClass(cls):
        for srv in (S.cached, S.plain):
            if srv:
                srv.kill()


if __name__ == "__main__":
    sys.exit(ht.run_main("integration_partial_cache", [TestPartialCache], __doc__))
