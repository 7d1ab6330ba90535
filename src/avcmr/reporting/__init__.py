"""Result tables (Tables 2–4) and figures, computed from the per-query evaluation tables."""
