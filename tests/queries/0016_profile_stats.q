# GetProfileStats: oldest t0, newest t0+20s.
connect querier.v1.QuerierService/GetProfileStats
{}
