-- The state of `meshtrust serve`: enrollments, issued certificates, enrollment-token
-- hashes and the audit log. Never a private key.
--
-- One schema for SQLite and PostgreSQL: integers are BIGINT, instants are BIGINT unix
-- seconds (UTC), text is TEXT, booleans are BIGINT 0/1; no BLOB/BYTEA, no SERIAL or
-- AUTOINCREMENT (audit ids come from the `counters` row, inside the writing transaction).

CREATE TABLE clusters (
    name            TEXT   NOT NULL PRIMARY KEY,
    state           TEXT   NOT NULL CHECK (state IN ('enrolled', 'revoked')),
    key_fingerprint TEXT   NOT NULL,
    current_serial  TEXT   NOT NULL,
    not_after       BIGINT NOT NULL,
    enrolled_at     BIGINT NOT NULL,
    last_seen       BIGINT NOT NULL,
    -- Fingerprints of the roots handed out with the current certificate, comma-separated.
    roots           TEXT   NOT NULL,
    revoked_at      BIGINT,
    revoked_by      TEXT
);

CREATE TABLE certificates (
    serial          TEXT   NOT NULL PRIMARY KEY,
    cluster         TEXT   NOT NULL REFERENCES clusters (name),
    key_fingerprint TEXT   NOT NULL,
    not_after       BIGINT NOT NULL,
    issued_at       BIGINT NOT NULL,
    revoked         BIGINT NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    certificate_pem TEXT   NOT NULL,
    chain_pem       TEXT   NOT NULL,
    kind            TEXT   NOT NULL CHECK (kind IN ('enroll', 'renew'))
);

CREATE INDEX certificates_by_cluster ON certificates (cluster);

CREATE TABLE tokens (
    -- SHA-256 of the token, lowercase hex: the token itself is never stored.
    hash        TEXT   NOT NULL PRIMARY KEY,
    cluster     TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT   NOT NULL,
    used_at     BIGINT,
    used_by_key TEXT
);

CREATE TABLE audit (
    -- Gap-free and in commit order: reserved from counters('audit') by each transaction.
    id        BIGINT NOT NULL PRIMARY KEY,
    at        BIGINT NOT NULL,
    principal TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    cluster   TEXT,
    serial    TEXT,
    result    TEXT   NOT NULL CHECK (result IN ('ok', 'refused', 'error')),
    reason    TEXT   NOT NULL
);

CREATE INDEX audit_by_cluster ON audit (cluster);

-- Named counters; `value` is the last number handed out.
CREATE TABLE counters (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO counters (name, value) VALUES ('audit', 0);
