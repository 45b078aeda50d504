ALTER TABLE audit_head DROP COLUMN frontier;
ALTER TABLE audit_head DROP COLUMN tree_size;
