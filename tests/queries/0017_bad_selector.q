# A selector that does not parse: invalid_argument (only the code is golden).
connect querier.v1.QuerierService/SelectMergeStacktraces
{"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=}", "start": "1767225541000", "end": "1767225661000"}
