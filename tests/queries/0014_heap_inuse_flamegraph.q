# mapindex heap inuse_space, 10 nodes: total 88131528 (expected/go/mapindex.heap/totals.txt).
connect querier.v1.QuerierService/SelectMergeStacktraces
output: flamegraph
{"profileTypeID": "memory:inuse_space:bytes:space:bytes", "labelSelector": "{service_name=\"mapindex\"}", "maxNodes": "10", "start": "1767225541000", "end": "1767225661000"}
