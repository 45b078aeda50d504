#!/usr/bin/env python3
"""Creates cfssl's certificate database (SQLite, cfssl 1.2 schema) from
peer/cfssl-certs.jsonl, for `cfssl ocsprefresh` then `cfssl ocspdump`."""
import json
import sqlite3
import sys

db_path, certs_path = sys.argv[1], sys.argv[2]
db = sqlite3.connect(db_path)
db.executescript("""
DROP TABLE IF EXISTS ocsp_responses;
DROP TABLE IF EXISTS certificates;
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier)
);
""")
rows = []
with open(certs_path) as f:
    for line in f:
        c = json.loads(line)
        rows.append((c["serial"], c["aki"], "", c["status"], c["reason"],
                     c["expiry"], c["revoked_at"] or "0001-01-01 00:00:00", c["pem"]))
db.executemany("INSERT INTO certificates VALUES (?,?,?,?,?,?,?,?)", rows)
db.commit()
print(f"cfssl certdb: {len(rows)} certificates")
