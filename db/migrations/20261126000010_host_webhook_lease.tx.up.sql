-- Host webhook delivery is claimed with a lease (a short UPDATE), not a row
-- lock held across the POSTs to the host: a slow host no longer pins a
-- connection and an open transaction. lease_token says whose the lease is;
-- progress is recorded only under it.
ALTER TABLE host_webhook_state ADD COLUMN lease_until timestamptz, ADD COLUMN lease_token text;
