//! Credentials of a local control plane: a CA, the API server's serving certificate, the
//! service-account signing key and a static admin token.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};

/// Files written by [`write`].
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    pub token_file: PathBuf,
    pub admin_token: String,
    /// `(user, token)` of each extra identity (group `system:masters`), see [`write_with_users`].
    pub user_tokens: Vec<(String, String)>,
}

fn random_token() -> String {
    // Not a secret of any value: the control plane listens on 127.0.0.1 only and lives for one run.
    let key = KeyPair::generate()
        .map(|k| k.public_key_raw().to_vec())
        .unwrap_or_default();
    key.iter()
        .skip(1)
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the credentials into `dir`.
pub fn write(dir: &Path) -> Result<Pki, crate::Error> {
    write_with_users(dir, &[])
}

/// Writes the credentials into `dir`, with one static token per extra user (each its own identity in
/// group `system:masters`, so a benchmark can tell two clients apart in the audit log).
pub fn write_with_users(dir: &Path, users: &[String]) -> Result<Pki, crate::Error> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let pki_err = |e: rcgen::Error| crate::Error::Pki(e.to_string());

    let ca_key = KeyPair::generate().map_err(pki_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "everynode-local-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(pki_err)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().map_err(pki_err)?;
    let sans = [
        "localhost",
        "127.0.0.1",
        "10.0.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ];
    let mut server = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .map_err(pki_err)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let server_cert = server.signed_by(&server_key, &issuer).map_err(pki_err)?;

    let sa_key = KeyPair::generate().map_err(pki_err)?;
    let admin_token = random_token();

    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("apiserver.crt"),
        server_key: dir.join("apiserver.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
        token_file: dir.join("tokens.csv"),
        admin_token: admin_token.clone(),
        user_tokens: users.iter().map(|u| (u.clone(), random_token())).collect(),
    };
    let mut tokens = format!("{admin_token},admin,admin,system:masters\n");
    for (i, (user, token)) in pki.user_tokens.iter().enumerate() {
        tokens.push_str(&format!("{token},{user},extra-{i},system:masters\n"));
    }
    let files = [
        (&pki.ca_cert, ca_cert.pem()),
        (&pki.server_cert, server_cert.pem()),
        (&pki.server_key, server_key.serialize_pem()),
        (&pki.sa_key, sa_key.serialize_pem()),
        (&pki.sa_pub, sa_key.public_key_pem()),
        (&pki.token_file, tokens),
    ];
    for (path, content) in files {
        std::fs::write(path, content).map_err(|e| crate::Error::io(path, e))?;
    }
    Ok(pki)
}
