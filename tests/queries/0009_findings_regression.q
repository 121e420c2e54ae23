# mapindex.cpu.000 (baseline) vs mapindex.cpu.002 (comparison), top 3 per list.
connect hearth.v1.FindingsService/Regression
{"baseline": {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"mapindex\"}", "start": "1767225596000", "end": "1767225606000"},
 "comparison": {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"mapindex\"}", "start": "1767225616000", "end": "1767225626000"},
 "top": "3"}
