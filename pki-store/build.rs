//! Rebuilds ca-core when a migration is added: `embed_migrations!` reads the
//! migration folders at compile time but does not tell cargo to watch them.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
