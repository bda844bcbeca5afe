"""Real workloads (torch): MiniLM, SmolLM2, ViT, MemN2N."""
