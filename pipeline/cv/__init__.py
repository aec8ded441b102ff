"""Cross-validation that mirrors the test split: fold columns (:mod:`.folds`), near-duplicate
search (:mod:`.duplicates`), the checks that compare folds with the test split
(:mod:`.diagnostics`) and the choice among candidate groupings (:mod:`.plan`). See docs/cv.md.
"""
