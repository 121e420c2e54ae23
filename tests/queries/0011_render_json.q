# /pyroscope/render of workpool CPU, 8 nodes: numTicks 16690000000, 15 s timeline.
http GET /pyroscope/render?query=process_cpu%3Acpu%3Ananoseconds%3Acpu%3Ananoseconds%7Bservice_name%3D%22workpool%22%7D&from=1767225541&until=1767225661&max-nodes=8
