"""One module per cell of the lab's matrix; each has ``measure(ctx, result)``."""
