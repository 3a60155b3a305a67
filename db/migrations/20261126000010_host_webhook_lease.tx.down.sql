ALTER TABLE host_webhook_state DROP COLUMN IF EXISTS lease_until, DROP COLUMN IF EXISTS lease_token;
