-- The inbox is a queue: every row is inserted, updated once when processed
-- and later deleted, so dead versions pile up in its partial index of
-- pending rows and every claim wades through them. The default autovacuum
-- trigger (20 % of the table dead) lets hundreds of thousands accumulate;
-- vacuum it after a fixed number instead.
ALTER TABLE inbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0.02);
