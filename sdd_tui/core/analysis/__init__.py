"""What finished runs say: phases, exports, figures, the report, and what is trained afterwards from their rounds (re-dense, branches)."""
