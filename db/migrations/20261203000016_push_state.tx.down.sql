DROP FUNCTION IF EXISTS calsync_lock_push_state(bigint[], text, text, text);
