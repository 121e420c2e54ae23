# /pyroscope/render of all CPU grouped by region, 4 nodes.
http GET /pyroscope/render?query=process_cpu%3Acpu%3Ananoseconds%3Acpu%3Ananoseconds%7B%7D&from=1767225541&until=1767225661&max-nodes=4&groupBy=region
