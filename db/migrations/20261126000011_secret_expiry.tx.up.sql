-- When the company's client secret expires, as the auth file or the form
-- said (NULL: not given). A new registration replaces it.
ALTER TABLE credentials ADD COLUMN secret_expires_at timestamptz;
