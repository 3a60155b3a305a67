ALTER TABLE credentials DROP COLUMN IF EXISTS secret_expires_at;
