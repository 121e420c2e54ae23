#!/usr/bin/env python3
"""Builds OTLP profiles export requests (opentelemetry.proto.collector.profiles.v1development,
v1.10.0 numbering) from real pprof profiles with google.protobuf, the way an OTLP exporter lays
them out: one dictionary with "" at string 0 and a zero entry at index 0 of every table, and one
OTLP profile per pprof sample type (OTLP profiles carry a single sample type). String sample labels
become sample attributes. Used by test_otlp.py and, as a script, by tools/fuzz.sh for seeds:

  otlp_convert.py OUT_DIR PPROF.pb.gz...   writes OUT_DIR/<name>.otlp.pb and OUT_DIR/<name>.otlp.json

`pb` below is a namespace with the generated modules `profile` (google.v1 pprof) and `otlp`
(otlp_profiles_service_pb2), e.g. from load_modules().
"""

import glob
import os
import subprocess
import sys
import types


def load_modules(out_dir, proto_dir):
    """protoc --python_out for every .proto of proto_dir into out_dir -> namespace(profile, otlp)."""
    os.makedirs(out_dir, exist_ok=True)
    protos = sorted(glob.glob(os.path.join(proto_dir, "*.proto")))
    subprocess.run(["protoc", "--python_out=" + out_dir, "--proto_path=" + proto_dir] + protos, check=True, timeout=60)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    import otlp_profiles_service_pb2  # noqa: E402
    import profile_pb2  # noqa: E402

    return types.SimpleNamespace(profile=profile_pb2, otlp=otlp_profiles_service_pb2)


def pprof_to_otlp(pb, pprof_bytes, resource_attrs, scope_attrs=(), time_ns=None):
    """pprof_bytes (uncompressed) -> ExportProfilesServiceRequest with one resource
    (resource_attrs: [(key, string value)]), one scope, one profile per sample type."""
    src = pb.profile.Profile()
    src.ParseFromString(pprof_bytes)
    req = pb.otlp.ExportProfilesServiceRequest()
    d = req.dictionary
    strings = {}

    def s(text):
        if text not in strings:
            strings[text] = len(d.string_table)
            d.string_table.append(text)
        return strings[text]

    s("")
    for t in (d.mapping_table, d.location_table, d.function_table, d.link_table, d.attribute_table, d.stack_table):
        t.add()
    st = src.string_table
    mapping_index = {}
    for m in src.mapping:
        om = d.mapping_table.add(memory_start=m.memory_start, memory_limit=m.memory_limit, file_offset=m.file_offset,
                                 filename_strindex=s(st[m.filename]))
        if m.build_id:
            a = d.attribute_table.add(key_strindex=s("process.executable.build_id.gnu"))
            a.value.string_value = st[m.build_id]
            om.attribute_indices.append(len(d.attribute_table) - 1)
        mapping_index[m.id] = len(d.mapping_table) - 1
    function_index = {}
    for f in src.function:
        d.function_table.add(name_strindex=s(st[f.name]), system_name_strindex=s(st[f.system_name]),
                             filename_strindex=s(st[f.filename]), start_line=f.start_line)
        function_index[f.id] = len(d.function_table) - 1
    location_index = {}
    for loc in src.location:
        ol = d.location_table.add(mapping_index=mapping_index.get(loc.mapping_id, 0), address=loc.address)
        for ln in loc.line:
            ol.lines.add(function_index=function_index[ln.function_id] if ln.function_id else 0, line=ln.line)
        location_index[loc.id] = len(d.location_table) - 1
    stacks, attrs = {}, {}

    def stack(ids):
        key = tuple(location_index[i] for i in ids)
        if key not in stacks:
            d.stack_table.add().location_indices.extend(key)
            stacks[key] = len(d.stack_table) - 1
        return stacks[key]

    def attr(k, v):
        if (k, v) not in attrs:
            a = d.attribute_table.add(key_strindex=s(k))
            a.value.string_value = v
            attrs[(k, v)] = len(d.attribute_table) - 1
        return attrs[(k, v)]

    rp = req.resource_profiles.add()
    for k, v in resource_attrs:
        rp.resource.attributes.add(key=k).value.string_value = v
    sp = rp.scope_profiles.add()
    for k, v in scope_attrs:
        sp.scope.attributes.add(key=k).value.string_value = v
    for i, vt in enumerate(src.sample_type):
        p = sp.profiles.add(time_unix_nano=time_ns if time_ns is not None else src.time_nanos,
                            duration_nano=src.duration_nanos, period=src.period)
        p.sample_type.type_strindex = s(st[vt.type])
        p.sample_type.unit_strindex = s(st[vt.unit])
        if src.HasField("period_type"):
            p.period_type.type_strindex = s(st[src.period_type.type])
            p.period_type.unit_strindex = s(st[src.period_type.unit])
        for smp in src.sample:
            os_ = p.samples.add(stack_index=stack(smp.location_id))
            os_.values.append(smp.value[i])
            for lb in smp.label:
                if lb.str:
                    os_.attribute_indices.append(attr(st[lb.key], st[lb.str]))
    return req


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    import gzip
    import tempfile

    from google.protobuf import json_format

    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory(prefix="hearth-otlp-pb-") as tmp:  # the generated modules
        pb = load_modules(tmp, os.path.join(here, "..", "..", "cluster", "proto"))
        os.makedirs(argv[1], exist_ok=True)
        for path in argv[2:]:
            with open(path, "rb") as f:
                raw = gzip.decompress(f.read())
            req = pprof_to_otlp(pb, raw, [("service.name", "seed"), ("process.executable.name", "seed")],
                                [("otel.scope.name", "seed")])
            base = os.path.join(argv[1], os.path.basename(path).replace(".pb.gz", ""))
            with open(base + ".otlp.pb", "wb") as f:
                f.write(req.SerializeToString())
            with open(base + ".otlp.json", "w") as f:
                f.write(json_format.MessageToJson(req, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
