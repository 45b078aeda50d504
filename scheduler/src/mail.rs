//! Delivery of the reminder outbox over SMTP. (Being written.)
