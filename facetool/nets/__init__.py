"""Neural networks implemented in facetool itself (pure PyTorch, pretrained weights loaded from files)."""
