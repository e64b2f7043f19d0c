-- A page of tokens is one kind of an organization's (service tokens) or of a user's (their
-- personal tokens), in id order (`list_tokens_statement` in roster-store-sql). With no index
-- naming the kind and ending in the id, a page found the parent's tokens of every kind and
-- sorted them. The user's index replaces `tokens_user`, whose lookups by user it still serves;
-- the organization's is one more entry per token written, and tokens are written rarely.

DROP INDEX tokens_user;
CREATE INDEX tokens_user_kind_id ON tokens (user_id, kind, id);
CREATE INDEX tokens_org_kind_id ON tokens (org_id, kind, id);
