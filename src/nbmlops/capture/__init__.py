"""Turn one cell execution, or one ``start_run`` block, into a run record."""
