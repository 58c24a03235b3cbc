"""Data files shipped with sketchstory.

``bpe_simple_vocab_16e6.txt.gz``: OpenAI CLIP's BPE merges (MIT licence, OpenAI and the open_clip
authors), the vocabulary of SD1.5's text encoder.
"""
