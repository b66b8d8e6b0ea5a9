-- scopegate control plane: every account's access-control data (docs/control-plane.md).

-- One row per account. `revision` is dense: each committed change sets it to exactly one more.
CREATE TABLE accounts (
    account     text        PRIMARY KEY,
    revision    bigint      NOT NULL CHECK (revision >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every entity of every account, keyed (account, kind, key). `key` is a JSON array of the fields
-- that identify the entity within its kind (scope, identifier, ...); `parent` is the key of the
-- entity a child row belongs to (a user group's member, an API key's token); `body` is the entity
-- in the snapshot file form (proto field names), children and parent keys left out.
CREATE TABLE entities (
    account     text   NOT NULL REFERENCES accounts (account) ON DELETE CASCADE,
    kind        text   NOT NULL CHECK (kind IN (
                    'organization', 'project', 'user', 'user_group', 'user_group_member',
                    'service_account', 'role', 'resource_group', 'resource', 'role_assignment',
                    'api_key', 'api_token')),
    key         text   NOT NULL,
    parent      text,
    body        jsonb  NOT NULL,
    revision    bigint NOT NULL,
    PRIMARY KEY (account, kind, key)
);

-- One row per committed change, written in the change's own transaction.
CREATE TABLE change_log (
    account      text        NOT NULL REFERENCES accounts (account) ON DELETE CASCADE,
    revision     bigint      NOT NULL,
    actor        text        NOT NULL,
    summary      text        NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- [{"kind": ..., "key": ..., "op": "insert" | "update" | "delete"}, ...]
    changed      jsonb       NOT NULL,
    PRIMARY KEY (account, revision)
);
