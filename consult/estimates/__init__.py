"""Wait estimates: the model (pure) and the per-queue tables of estimates by place."""
