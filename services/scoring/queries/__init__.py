"""The read side: reports counted from the rollups when no segment is asked for, from the answers
table (an index-only scan of one survey's answers: declared dimensions are columns, ad-hoc ones a JSONB
column in the same index)."""
