"""Verification accuracy of the embedders on LFW view 1 (issue 19): photos and identities
(lfw), embedding variants (variants), rates at a false-accept rate and fusion (rates)."""
