"""A bundled demo world and model family: a procedural toy comic world, the tiny models trained on
it (``weights/``), and a consistency measure that reads hidden colours back from generated panels."""
