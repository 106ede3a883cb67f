"""Workloads: transformer model specs (from Hugging Face configs) and per-operator accounting."""
