"""The data factory: offline, seeded, resumable generators of training data (``facetool data ...``)."""
