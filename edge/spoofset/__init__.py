"""The liveness test set (issue 18): live recordings and attacks rendered from real photos and video."""
