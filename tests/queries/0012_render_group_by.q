# /pyroscope/render of all CPU grouped by region, 4 nodes.
http GET /pyroscope/render?query=process_cpu%3Acpu%3Ananoseconds%3Acpu%3Ananoseconds%7B%7D&from=1767225540&until=1767225660&max-nodes=4&groupBy=region
