# workpool goroutines via SelectMergeProfile, pprof-top: total 12 (expected/go/workpool.goroutine).
connect querier.v1.QuerierService/SelectMergeProfile
output: pprof-top 8
{"profileTypeID": "goroutines:goroutine:count:goroutine:count", "labelSelector": "{service_name=\"workpool\"}", "start": "1767225541000", "end": "1767225661000"}
