# Every label name of the dataset (single tenant, utf8 names not asked for).
connect querier.v1.QuerierService/LabelNames
{"matchers": ["{}"], "start": "1767225541000", "end": "1767225661000"}
