-- Tickets from mentions (issue 13): a Note that mentioned a Repository actor and opened
-- an issue (note_id), the Ticket it opened, and the reply Note that answered its author
-- (reply_id). A reply in the thread, to either Note, is a comment on that issue.
CREATE TABLE mention_tickets (
    note_id   TEXT    PRIMARY KEY,
    ticket_id TEXT    NOT NULL,
    reply_id  TEXT    NOT NULL UNIQUE,
    author_id TEXT    NOT NULL,
    created   BIGINT  NOT NULL
);
