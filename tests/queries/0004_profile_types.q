# Profile types of the dataset, sorted by ID.
connect querier.v1.QuerierService/ProfileTypes
{"start": "1767225541000", "end": "1767225661000"}
