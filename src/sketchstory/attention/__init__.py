"""MAGA: the multi-aggregation attention memory (thesis ch. 4, as read in docs/maga.md)."""
