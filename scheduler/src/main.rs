//! `pki-scheduler` binary. (Being written.)

fn main() {}
