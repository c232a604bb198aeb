-- The LLM tier's cost per message: which model answered, the tokens it used and how long the
-- call took (including retries), so a team can see what the optional second opinion costs.
-- NULL when the model was not asked. Runs unchanged on SQLite and PostgreSQL.

ALTER TABLE audit ADD COLUMN llm_model VARCHAR(100);
ALTER TABLE audit ADD COLUMN llm_prompt_tokens BIGINT;
ALTER TABLE audit ADD COLUMN llm_completion_tokens BIGINT;
ALTER TABLE audit ADD COLUMN llm_latency_ms BIGINT;
ALTER TABLE audit ADD COLUMN llm_outcome VARCHAR(32);
