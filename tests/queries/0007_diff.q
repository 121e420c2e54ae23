# workpool.cpu.000 (left) vs workpool.cpu.001 (right), 8 nodes: leftTicks 5520000000, rightTicks 5610000000.
connect querier.v1.QuerierService/Diff
{"left": {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"workpool\"}", "start": "1767225596000", "end": "1767225606000", "maxNodes": "8"},
 "right": {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"workpool\"}", "start": "1767225606000", "end": "1767225616000", "maxNodes": "8"}}
