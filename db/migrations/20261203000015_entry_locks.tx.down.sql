DROP FUNCTION IF EXISTS calsync_lock_keys(bigint[]);
