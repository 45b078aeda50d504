DROP INDEX certificates_crl_expiry;
DROP INDEX certificates_crl_entries;
DROP INDEX crls_scope;
DROP TABLE crls;
DROP TABLE crl_numbers;
