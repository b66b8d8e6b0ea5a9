-- Each change's delta in the wire form (`scopegate.v1.AccountDelta`, protobuf), written by the
-- writer in the change's own transaction, so a replica catches up by applying the deltas after the
-- revision it serves instead of reading and compiling the whole account. NULL (a change written
-- before this migration, or one the writer could not diff): the replica reads the account whole.
ALTER TABLE change_log ADD COLUMN delta bytea;
