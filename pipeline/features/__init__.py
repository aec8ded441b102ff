"""Text into model inputs: cleaning and field joining (:mod:`.text`), the pretrained encoder
and its tokenizer (:mod:`.encoder`) and the numeric precision it runs in (:mod:`.precision`).
"""
