-- ktl-lsp session store. One row per session, one row per frame; frames keep raw bytes.
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL,
    exit_code   INTEGER,
    signal      TEXT,
    error       TEXT,
    created_ns  INTEGER NOT NULL,
    ended_ns    INTEGER,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    bytes_out   INTEGER NOT NULL DEFAULT 0,
    pinned      INTEGER NOT NULL DEFAULT 0,
    parent_id   TEXT,
    meta        TEXT NOT NULL DEFAULT '{}',
    tags        TEXT NOT NULL DEFAULT '{}',
    -- host:pid:start of the process recording it, so a second process never marks it interrupted
    owner       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created_ns DESC);
CREATE INDEX IF NOT EXISTS sessions_state ON sessions (state);
CREATE INDEX IF NOT EXISTS sessions_parent ON sessions (parent_id);

CREATE TABLE IF NOT EXISTS frames (
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    ts_ns       INTEGER NOT NULL,
    type        TEXT NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- Command blocks of shell sessions (sessions/blocks.py), from their block event frames.
CREATE TABLE IF NOT EXISTS blocks (
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    command     TEXT NOT NULL DEFAULT '',
    cwd         TEXT,
    started_ns  INTEGER NOT NULL,
    ended_ns    INTEGER,
    exit_code   INTEGER,
    from_seq    INTEGER NOT NULL,
    to_seq      INTEGER,
    PRIMARY KEY (session_id, idx)
) WITHOUT ROWID;

-- Full-text search over plain output (sessions/search.py): row id = n << 32 | frame seq.
CREATE TABLE IF NOT EXISTS search_docs (
    n           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL UNIQUE REFERENCES sessions (id) ON DELETE CASCADE
);
-- Output recorded but not indexed yet (a burst, indexed once it is over): what a process that
-- dies first leaves for the next one to open the store to index.
CREATE TABLE IF NOT EXISTS search_pending (
    session_id  TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    from_seq    INTEGER NOT NULL,
    to_seq      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5 (
    text, content = '', columnsize = 0, detail = none
);

-- Answers given in one process to a question another process asked (sessions/approvals.py):
-- the first one posted for a question is the only one; the asking process takes it from here.
CREATE TABLE IF NOT EXISTS answers (
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    choice      TEXT,
    who         TEXT NOT NULL,
    posted_ns   INTEGER NOT NULL,
    PRIMARY KEY (session_id, n)
) WITHOUT ROWID;
