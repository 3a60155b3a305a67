DROP TABLE IF EXISTS host_webhook_state;
