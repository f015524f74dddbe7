-- Daily digest (issue 5): a contact may ask for one summary a day of the incidents it may see.
-- Keep in step with migrations/sqlite/0007_digest.sql.
ALTER TABLE contacts ADD COLUMN digest BIGINT NOT NULL DEFAULT 0;
