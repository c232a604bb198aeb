-- Chores: the Reddit posts already shown in each place, so a channel does not see the same
-- meme twice while it is still hot. Rows older than the repeat window are deleted when a
-- new one is written. Times are Unix milliseconds.

CREATE TABLE meme_posts (
    place     VARCHAR(400) NOT NULL,
    post_id   VARCHAR(32)  NOT NULL,
    posted_at BIGINT       NOT NULL,
    PRIMARY KEY (place, post_id)
);
CREATE INDEX meme_posts_by_time ON meme_posts (posted_at);
