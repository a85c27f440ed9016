"""Data sets: the toolkit's landmark layout, its checker, converters from public layouts, the phantom, and the
readers of the benchmark layouts. Import from the submodules (``landmark_afl.data.dataset``, ``.phantom``...):
this face stays empty so that importing one reader never loads the others."""
