# Top 5 functions of workpool CPU: top_self = the first 5 rows of merged/go-workpool-cpu/top.cpu.txt.
connect hearth.v1.FindingsService/Explain
{"selection": {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"workpool\"}", "start": "1767225541000", "end": "1767225661000"}, "top": "5"}
