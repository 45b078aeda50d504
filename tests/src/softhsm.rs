//! SoftHSM2 tokens for one test: its own `softhsm2.conf` and token
//! directory in the test's temporary directory (`SOFTHSM2_CONF`), a CA token
//! and an OCSP responder token initialised with `softhsm2-util`, the
//! `[keys.pkcs11]` section of pki.toml, the PIN variables each binary gets
//! (its own family's only), and `pkcs11-tool --list-objects` parsed.

use crate::*;

/// The PKCS#11 module of Debian's `softhsm2` package.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The security officer PIN of every test token.
pub const SO_PIN: &str = "e2e-so-pin-0000";

/// A key family with its own token and PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    Ca,
    Ocsp,
    /// The root's offline token of a key ceremony (`[root_keys]`).
    Root,
}

impl KeyFamily {
    /// Label of the family's token in the tests.
    pub fn token(self) -> &'static str {
        match self {
            KeyFamily::Ca => "e2e-ca",
            KeyFamily::Ocsp => "e2e-ocsp",
            KeyFamily::Root => "e2e-root",
        }
    }

    /// The family's user PIN.
    pub fn pin(self) -> &'static str {
        match self {
            KeyFamily::Ca => "e2e-ca-user-pin-1",
            KeyFamily::Ocsp => "e2e-ocsp-user-pin-2",
            KeyFamily::Root => "e2e-root-user-pin-3",
        }
    }

    /// The environment variable pki.toml names for the PIN (the defaults).
    pub fn pin_env(self) -> &'static str {
        match self {
            KeyFamily::Ca => "PKI_CA_PIN",
            KeyFamily::Ocsp => "PKI_OCSP_PIN",
            KeyFamily::Root => "PKI_ROOT_PIN",
        }
    }
}

/// The SoftHSM2 set-up of one test.
#[derive(Debug, Clone)]
pub struct SoftHsm {
    /// The `softhsm2.conf` every command gets as `SOFTHSM2_CONF`.
    pub conf: PathBuf,
}

/// One object of `pkcs11-tool --list-objects`: its heading line
/// (`Private Key Object; EC`) and its `name: value` lines.
#[derive(Debug, Clone)]
pub struct TokenObject {
    pub heading: String,
    pub fields: Vec<(String, String)>,
}

impl TokenObject {
    pub fn is_private_key(&self) -> bool {
        self.heading.starts_with("Private Key Object")
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn label(&self) -> &str {
        self.field("label").unwrap_or("")
    }
}

/// Parses the text of `pkcs11-tool --list-objects`.
pub fn parse_token_objects(text: &str) -> Vec<TokenObject> {
    let mut objects: Vec<TokenObject> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            objects.push(TokenObject {
                heading: line.trim().to_string(),
                fields: Vec::new(),
            });
        } else if let (Some(obj), Some((name, value))) = (objects.last_mut(), line.split_once(':'))
        {
            obj.fields
                .push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    objects
}

impl TestEnv {
    /// Puts this environment's keys on SoftHSM2: a token per family in
    /// `<tmp>/softhsm/tokens`, and `[keys] backend = "pkcs11"` in pki.toml.
    pub fn use_softhsm(&mut self) {
        let tokens = self.path("softhsm/tokens");
        fs::create_dir_all(&tokens).expect("create token directory");
        let conf = self.write(
            "softhsm/softhsm2.conf",
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        );
        let hsm = SoftHsm { conf };
        for family in [KeyFamily::Ca, KeyFamily::Ocsp, KeyFamily::Root] {
            let out = output_of(
                Command::new("softhsm2-util")
                    .env("SOFTHSM2_CONF", &hsm.conf)
                    .args(["--init-token", "--free", "--label", family.token()])
                    .args(["--so-pin", SO_PIN, "--pin", family.pin()]),
                "softhsm2-util (run scripts/setup-test-tools.sh)",
            );
            assert!(
                out.status.success(),
                "{}",
                describe("softhsm2-util --init-token", &out)
            );
        }
        let mut text = fs::read_to_string(self.config_path()).expect("read pki.toml");
        text.push_str(&format!(
            "\n[keys]\nbackend = \"pkcs11\"\n\n[keys.pkcs11]\nmodule = \"{SOFTHSM_MODULE}\"\n\n\
             [keys.pkcs11.ca]\ntoken = \"{}\"\n\n[keys.pkcs11.ocsp]\ntoken = \"{}\"\n",
            KeyFamily::Ca.token(),
            KeyFamily::Ocsp.token()
        ));
        fs::write(self.config_path(), text).expect("write pki.toml");
        self.softhsm = Some(hsm);
    }

    /// Gives a command the SoftHSM2 configuration and the PINs of
    /// `families` only (nothing when the keys are software keys).
    pub fn key_env(&self, cmd: &mut Command, families: &[KeyFamily]) {
        let Some(hsm) = &self.softhsm else {
            return;
        };
        cmd.env("SOFTHSM2_CONF", &hsm.conf);
        for family in families {
            cmd.env(family.pin_env(), family.pin());
        }
    }

    /// `pkcs11-tool --list-objects --login` on a family's token, parsed.
    #[track_caller]
    pub fn token_objects(&self, family: KeyFamily) -> Vec<TokenObject> {
        let hsm = self.softhsm.as_ref().expect("use_softhsm first");
        let args = [
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            family.token(),
            "--list-objects",
            "--login",
            "--pin",
            family.pin(),
        ];
        let out = output_of(
            Command::new("pkcs11-tool")
                .env("SOFTHSM2_CONF", &hsm.conf)
                .args(args),
            "pkcs11-tool (run scripts/setup-test-tools.sh)",
        );
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("pkcs11-tool {}", args.join(" ")), &out)
        );
        parse_token_objects(&stdout_str(&out))
    }
}
