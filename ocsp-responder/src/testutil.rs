//! Test fixtures: a real CA hierarchy (`ca_core::hierarchy::init`) in a
//! temporary SQLite database, with its responders loaded.

use crate::issuers::{self, Issuers};
use ca_core::Ca;
use pki_keys::KeyStore;
use pki_store::clock::SystemClock;
use pki_store::config::{Config, KeyPurpose};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub config: Config,
    pub issuers: Issuers,
}

impl Fixture {
    /// A new hierarchy in its own directory.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        std::fs::write(dir.path().join("ca-pass"), "unit-test CA passphrase\n").unwrap();
        std::fs::write(dir.path().join("ocsp-pass"), "unit-test OCSP passphrase\n").unwrap();
        for file in ["ca-pass", "ocsp-pass"] {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(dir.path().join(file), private).unwrap();
        }
        config.keys.passphrase_env = "OCSP_UNIT_TEST_UNSET_CA".into();
        config.keys.ocsp_passphrase_env = "OCSP_UNIT_TEST_UNSET_OCSP".into();
        config.keys.passphrase_file = Some(dir.path().join("ca-pass"));
        config.keys.ocsp_passphrase_file = Some(dir.path().join("ocsp-pass"));
        let mut ca =
            Ca::create(config.clone(), Arc::new(SystemClock), "unit-test").expect("create CA");
        ca_core::hierarchy::init(&mut ca).expect("init");
        let keys = KeyStore::new(&config, KeyPurpose::OcspResponder);
        let now = chrono::Utc::now().timestamp();
        let issuers = issuers::load(
            &mut ca.db,
            &keys,
            &[],
            &mut HashMap::new(),
            None,
            now,
            &mut |_| {},
        )
        .expect("load issuers");
        Fixture {
            _dir: dir,
            config,
            issuers,
        }
    }

    /// One hierarchy shared by the tests that only read it.
    pub fn shared() -> &'static Fixture {
        static SHARED: OnceLock<Fixture> = OnceLock::new();
        SHARED.get_or_init(Fixture::new)
    }

    /// The CA context of this fixture (CA keys included), for changes.
    pub fn ca(&self) -> Ca {
        Ca::open(self.config.clone(), Arc::new(SystemClock), "unit-test").expect("open CA")
    }
}

/// A real responder (the identity-card CA's) of the shared fixture.
pub fn test_responder() -> std::sync::Arc<crate::issuers::Responder> {
    Fixture::shared()
        .issuers
        .by_name("identity-card-ca")
        .and_then(|i| i.responder.clone())
        .expect("fixture has a responder")
}
