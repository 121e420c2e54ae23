# CPU per region and service at a 10 s step: points at t0, t0+10s, t0+20s = each file's total.
connect querier.v1.QuerierService/SelectSeries
{"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{}", "groupBy": ["service_name", "region"], "step": 10, "start": "1767225541000", "end": "1767225661000"}
