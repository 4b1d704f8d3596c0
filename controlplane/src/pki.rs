//! Credentials of a local control plane: a CA, the API server's serving certificate, the
//! service-account signing key and a static admin token; more serving certificates signed by the
//! same CA on demand ([`issue_serving_cert`], e.g. for a fault-injecting proxy in front of the API
//! server that clients must trust as they trust the API server).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};

/// Files written by [`write`].
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    /// The CA's private key, kept to sign more serving certificates ([`issue_serving_cert`]).
    pub ca_key: PathBuf,
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
    write_with_users_in_group(dir, users, "system:masters")
}

/// [`write_with_users`] with the extra users in `group` instead of `system:masters`.
pub fn write_with_users_in_group(
    dir: &Path,
    users: &[String],
    group: &str,
) -> Result<Pki, crate::Error> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let pki_err = |e: rcgen::Error| crate::Error::Pki(e.to_string());

    let ca_key = KeyPair::generate().map_err(pki_err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = ca_params().map_err(pki_err)?;
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
        ca_key: dir.join("ca.key"),
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
        tokens.push_str(&format!("{token},{user},extra-{i},{group}\n"));
    }
    let files = [
        (&pki.ca_cert, ca_cert.pem()),
        (&pki.ca_key, ca_key_pem),
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

/// The CA's parameters; the same every time, so that a certificate signed later with the saved key
/// names exactly the issuer of `ca.crt`.
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "everynode-local-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca)
}

/// Signs a new serving certificate for `sans` (host names or IP addresses) with the CA of `pki`,
/// and writes it to `<dir>/<name>.crt` and `<dir>/<name>.key`; returns those two paths.
pub fn issue_serving_cert(
    pki: &Pki,
    dir: &Path,
    name: &str,
    sans: &[&str],
) -> Result<(PathBuf, PathBuf), crate::Error> {
    let pki_err = |e: rcgen::Error| crate::Error::Pki(e.to_string());
    let ca_pem =
        std::fs::read_to_string(&pki.ca_key).map_err(|e| crate::Error::io(&pki.ca_key, e))?;
    let ca_key = KeyPair::from_pem(&ca_pem).map_err(pki_err)?;
    let issuer = Issuer::new(ca_params().map_err(pki_err)?, ca_key);
    let key = KeyPair::generate().map_err(pki_err)?;
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .map_err(pki_err)?;
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, &issuer).map_err(pki_err)?;
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert.pem()).map_err(|e| crate::Error::io(&cert_path, e))?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(|e| crate::Error::io(&key_path, e))?;
    Ok((cert_path, key_path))
}
