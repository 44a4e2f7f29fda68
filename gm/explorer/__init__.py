"""What carried state buys, character by character, and what the hidden units hold
(``python -m gm.explore``)."""
