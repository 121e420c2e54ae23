# service_name values of the CPU series.
connect querier.v1.QuerierService/LabelValues
{"name": "service_name", "matchers": ["{__name__=\"process_cpu\"}"], "start": "1767225541000", "end": "1767225661000"}
