-- Each person's IDE settings (theme, font, keymap...), so that they follow the person from
-- browser to browser. One JSON object per user, checked by the server before it is stored.
CREATE TABLE user_settings (
    user_id     TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    settings    TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
