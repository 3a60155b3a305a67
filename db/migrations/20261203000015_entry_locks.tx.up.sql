-- Takes a session advisory lock on each key, in the order given (callers
-- sort them, so two lockers never wait on each other in a cycle): one
-- round trip for a bulk push's 500 entries.
CREATE FUNCTION calsync_lock_keys(keys bigint[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k bigint;
BEGIN
    FOREACH k IN ARRAY keys LOOP
        PERFORM pg_advisory_lock(k);
    END LOOP;
END
$$;
