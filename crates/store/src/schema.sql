-- Tessera schema, version 1. Written once for both backends: `{{BLOB}}` becomes BLOB on SQLite and
-- BYTEA on PostgreSQL; everything else is SQL both accept. Entities that are read whole are kept
-- as JSON documents; the columns beside them are the ones queries filter or sort on.
CREATE TABLE IF NOT EXISTS users (
    uid TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    search TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS users_display_name ON users (display_name);
CREATE TABLE IF NOT EXISTS photos (
    uid TEXT PRIMARY KEY REFERENCES users (uid),
    photo {{BLOB}} NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (id TEXT PRIMARY KEY, name TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layouts (id TEXT PRIMARY KEY, name TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stations (id TEXT PRIMARY KEY, name TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (id BIGINT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operators (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairings (
    operator TEXT NOT NULL,
    station TEXT NOT NULL,
    printer TEXT NOT NULL,
    reader TEXT NOT NULL,
    PRIMARY KEY (operator, station)
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires BIGINT NOT NULL
);
-- `serial` came after version 1: `backend::add_device_serials` adds and fills it in an older
-- database, then indexes it.
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL,
    serial TEXT
);
CREATE INDEX IF NOT EXISTS devices_user ON devices (user_id);
CREATE TABLE IF NOT EXISTS device_secrets (
    device TEXT NOT NULL REFERENCES devices (id),
    kind TEXT NOT NULL,
    sealed {{BLOB}} NOT NULL,
    PRIMARY KEY (device, kind)
);
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (id),
    user_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    status TEXT NOT NULL,
    revocation_reason TEXT,
    status_changed_at BIGINT,
    data TEXT NOT NULL,
    der {{BLOB}} NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_device ON certificates (device);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, step TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_step ON jobs (step);
CREATE TABLE IF NOT EXISTS prints (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS prints_device ON prints (device);
CREATE TABLE IF NOT EXISTS audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    code BIGINT NOT NULL,
    name TEXT NOT NULL,
    operator TEXT,
    user_id TEXT,
    device TEXT,
    operation TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- One row: the head of the audit hash chain. Appends lock it first, so they are serialised.
CREATE TABLE IF NOT EXISTS audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
