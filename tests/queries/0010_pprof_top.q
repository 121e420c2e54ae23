# SelectMergeProfile of mapindex CPU summarized like go tool pprof -top (flat cum function):
# must equal merged/go-mapindex-cpu/top.cpu.txt.
connect querier.v1.QuerierService/SelectMergeProfile
output: pprof-top 12
{"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"mapindex\"}", "start": "1767225541000", "end": "1767225661000"}
