# Label sets of workpool, restricted to three names (what the new UI/Drilldown ask for, plus region).
connect querier.v1.QuerierService/Series
{"matchers": ["{service_name=\"workpool\"}"], "labelNames": ["service_name", "__profile_type__", "region"], "start": "1767225541000", "end": "1767225661000"}
