-- Zalo and SMS as notification channels (issue 17): a contact's Zalo user id (on the province's
-- Zalo bot), its choice of channels and its quiet hours. Keep in step with
-- migrations/postgres/0015_channels.sql.
--
-- channels: the families it is reached on, comma-separated in the order email,webhook,zalo,sms;
-- NULL: every channel it has an address for (email, webhook, zalo_id, phone) that the collector
-- has set up. quiet_start, quiet_end: minutes after midnight, Vietnam time (UTC+7), across
-- midnight when quiet_start > quiet_end; both NULL: no quiet hours. During them, notices on Zalo
-- and SMS that are not urgent wait (their next_attempt_at is the end of the quiet hours).
ALTER TABLE contacts ADD COLUMN zalo_id TEXT;
ALTER TABLE contacts ADD COLUMN channels TEXT;
ALTER TABLE contacts ADD COLUMN quiet_start INTEGER;
ALTER TABLE contacts ADD COLUMN quiet_end INTEGER;
