"""``superpod versus``: systems compared on one workload, at one budget (``budget``), each
with its best training and serving layout (``evaluate``), as a table of per-chip, per-rack,
per-watt and per-dollar figures with bands and a winner per row (``table``)."""
