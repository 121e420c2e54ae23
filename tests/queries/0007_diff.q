# workpool.cpu.000 (left) vs workpool.cpu.001 (right), 8 nodes: leftTicks 5520000000, rightTicks 5610000000.
connect querier.v1.QuerierService/Diff
{"left": {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"workpool\"}", "start": "1767225595000", "end": "1767225605000", "maxNodes": "8"},
 "right": {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{service_name=\"workpool\"}", "start": "1767225605000", "end": "1767225615000", "maxNodes": "8"}}
