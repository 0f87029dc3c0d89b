"""Datasets derived from other datasets: pseudo training queries made from a corpus (title, ICT,
LLM) and NanoBEIR-style subsets."""
