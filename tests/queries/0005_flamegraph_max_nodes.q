# workpool CPU (3 windows) truncated to 12 nodes; total = merged/go-workpool-cpu totals (16690000000).
connect querier.v1.QuerierService/SelectMergeStacktraces
output: flamegraph
{"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"workpool\"}", "maxNodes": "12", "start": "1767225541000", "end": "1767225661000"}
