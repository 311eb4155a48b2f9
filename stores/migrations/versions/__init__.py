"""One module per schema revision, oldest first (their ids say the order: 0001_..., 0002_...)."""
