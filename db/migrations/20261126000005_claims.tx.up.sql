-- Short leases that fold work every replica may be asked to do at once:
-- a lifecycle notification Graph delivered twice (or someone replayed),
-- and the recreation of one link's subscription. A row is a claim until
-- "until"; a later claim of the same key succeeds only after it.
CREATE TABLE claims (
    key   text PRIMARY KEY,
    until timestamptz NOT NULL
);
CREATE INDEX claims_until ON claims (until);
