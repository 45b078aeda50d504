-- The audit log's Merkle tree (RFC 9162 section 2.1; pki-store/src/merkle.rs):
-- the head also keeps the tree's compact frontier, the roots of the perfect
-- subtrees of the first tree_size records (hex, comma-separated, largest
-- first), so the root of the whole log is O(log n) away. Db::write updates it
-- with the chain in the same transaction. A log that already has records
-- starts with tree_size 0 and an empty frontier: the first write rebuilds the
-- frontier from the records (storage::chain::append).
ALTER TABLE audit_head ADD COLUMN tree_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN frontier TEXT NOT NULL DEFAULT '';
