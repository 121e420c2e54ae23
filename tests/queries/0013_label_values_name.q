# /pyroscope/label-values?label=__name__: the profile type IDs.
http GET /pyroscope/label-values?label=__name__
