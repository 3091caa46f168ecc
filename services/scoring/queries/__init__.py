"""The read side: reports counted from the rollups when no segment is asked for, from the answers
table (declared dimensions: an index-only scan) or with the responses' JSONB dimensions (ad-hoc)."""
