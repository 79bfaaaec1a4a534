"""Face library: stored faces, groups and match scoring on the Baidu scale."""
