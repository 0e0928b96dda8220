//! Where an admin command goes and how it authenticates, decided from the
//! flags and the named targets file before anything is sent.
//!
//! The targets file (TOML, default `~/.config/carepost/targets.toml`) names
//! stacks the way `samconfig.toml` names environments:
//!
//! ```toml
//! [local]
//! endpoint_url = "http://127.0.0.1:8787"
//! token_file = ".carepost/admin-token"
//!
//! [production]
//! stack = "carepost"          # API URL from the stack's ApiEndpoint output
//! region = "us-east-1"
//! profile = "clinic-prod"
//! ```
//!
//! Authentication is predictable: `--auth` (or the target's `auth`) says it
//! outright; without it, a token given as a flag, or a target with
//! `admin_token` / `token_file`, uses the token; with no target, a loopback
//! URL uses the local stack's token file (`<data dir>/admin-token`); anything
//! else signs with SigV4.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// How requests are authenticated.
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// The local stack's bearer token.
    Token,
    /// AWS Signature Version 4 for `execute-api`, credentials from the AWS SDK's chain.
    Sigv4,
}

/// One named target of the targets file.
#[derive(Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TargetEntry {
    pub endpoint_url: Option<String>,
    pub stack: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub auth: Option<AuthMode>,
    pub admin_token: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// What the flags say, before the targets file is consulted.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub target: Option<String>,
    pub endpoint_url: Option<String>,
    pub stack: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub auth: Option<AuthMode>,
    pub token: Option<String>,
    pub data_dir: PathBuf,
}

/// Where the API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Url(String),
    /// The `ApiEndpoint` output of this CloudFormation stack.
    Stack(String),
}

/// Where the bearer token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Value(String),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedAuth {
    Token(TokenSource),
    Sigv4,
}

/// The decision: endpoint, authentication and the AWS settings for signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub endpoint: Endpoint,
    pub auth: PlannedAuth,
    pub region: Option<String>,
    pub profile: Option<String>,
}

pub const LOCAL_URL: &str = "http://127.0.0.1:8787";

/// The default targets file: `$CAREPOST_TARGETS_FILE` is read by clap; this
/// is `$XDG_CONFIG_HOME/carepost/targets.toml` or `~/.config/carepost/targets.toml`.
pub fn default_targets_file() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(config.join("carepost").join("targets.toml"))
}

/// Parses a targets file's text (`path` only names it in errors).
pub fn parse_targets(text: &str, path: &Path) -> anyhow::Result<BTreeMap<String, TargetEntry>> {
    toml::from_str(text).with_context(|| format!("{} is not a valid targets file", path.display()))
}

/// Reads the named target from the file.
pub fn load_target(name: &str, path: Option<&Path>) -> anyhow::Result<TargetEntry> {
    let Some(path) = path else { bail!("--target {name}: no targets file (set --targets-file or HOME)") };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--target {name}: cannot read the targets file {}", path.display()))?;
    let mut targets = parse_targets(&text, path)?;
    match targets.remove(name) {
        Some(entry) => Ok(entry),
        None => {
            let known: Vec<&str> = targets.keys().map(String::as_str).collect();
            bail!("no target '{name}' in {}; it names: {}", path.display(), known.join(", "))
        }
    }
}

fn is_loopback(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else { return false };
    let Some(host) = url.host_str() else { return false };
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Flags win over the target's entries; see the module docs for the auth rule.
pub fn plan(flags: &Flags, target: Option<&TargetEntry>) -> anyhow::Result<Plan> {
    let entry = target.cloned().unwrap_or_default();
    let endpoint = match (&flags.endpoint_url, &flags.stack, &entry.endpoint_url, &entry.stack) {
        (Some(url), _, _, _) => Endpoint::Url(url.clone()),
        (None, Some(stack), _, _) => Endpoint::Stack(stack.clone()),
        (None, None, Some(url), _) => Endpoint::Url(url.clone()),
        (None, None, None, Some(stack)) => Endpoint::Stack(stack.clone()),
        (None, None, None, None) if target.is_some() => {
            bail!("--target {}: the target names neither endpoint_url nor stack", flags.target.as_deref().unwrap_or(""))
        }
        (None, None, None, None) => Endpoint::Url(LOCAL_URL.to_owned()),
    };
    let given_token = flags
        .token
        .clone()
        .map(TokenSource::Value)
        .or_else(|| entry.admin_token.clone().map(TokenSource::Value))
        .or_else(|| entry.token_file.clone().map(TokenSource::File));
    let local_token = || TokenSource::File(flags.data_dir.join("admin-token"));
    let loopback = matches!(&endpoint, Endpoint::Url(url) if is_loopback(url));
    let auth = match flags.auth.or(entry.auth) {
        Some(AuthMode::Sigv4) => PlannedAuth::Sigv4,
        Some(AuthMode::Token) => PlannedAuth::Token(given_token.unwrap_or_else(local_token)),
        None => match given_token {
            Some(token) => PlannedAuth::Token(token),
            None if target.is_none() && loopback => PlannedAuth::Token(local_token()),
            None => PlannedAuth::Sigv4,
        },
    };
    Ok(Plan {
        endpoint,
        auth,
        region: flags.region.clone().or(entry.region),
        profile: flags.profile.clone().or(entry.profile),
    })
}

/// The region of an `execute-api` URL (`https://ID.execute-api.REGION.amazonaws.com`).
pub fn region_from_url(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let mut labels = url.host_str()?.split('.');
    labels.find(|l| *l == "execute-api")?;
    labels.next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags { data_dir: PathBuf::from(".carepost"), ..Flags::default() }
    }

    const FILE: &str = r#"
        [local]
        endpoint_url = "http://127.0.0.1:8787"
        token_file = ".carepost/admin-token"

        [staging]
        stack = "carepost-staging"
        region = "eu-west-1"

        [production]
        endpoint_url = "https://abc123.execute-api.us-east-1.amazonaws.com"
        profile = "clinic-prod"
    "#;

    fn target(name: &str) -> TargetEntry {
        parse_targets(FILE, Path::new("targets.toml")).unwrap().remove(name).unwrap()
    }

    #[test]
    fn no_flags_and_no_target_means_the_local_stack_with_its_token_file() {
        let plan = plan(&flags(), None).unwrap();
        assert_eq!(plan.endpoint, Endpoint::Url(LOCAL_URL.into()));
        assert_eq!(plan.auth, PlannedAuth::Token(TokenSource::File(".carepost/admin-token".into())));
    }

    #[test]
    fn a_target_without_a_token_signs_and_one_with_a_token_file_uses_it() {
        let production = plan(&flags(), Some(&target("production"))).unwrap();
        assert_eq!(production.auth, PlannedAuth::Sigv4);
        assert_eq!(production.profile.as_deref(), Some("clinic-prod"));
        let local = plan(&flags(), Some(&target("local"))).unwrap();
        assert_eq!(local.auth, PlannedAuth::Token(TokenSource::File(".carepost/admin-token".into())));
    }

    #[test]
    fn a_stack_target_reads_its_url_from_the_stack_and_flags_win_over_the_file() {
        let staging = plan(&flags(), Some(&target("staging"))).unwrap();
        assert_eq!(staging.endpoint, Endpoint::Stack("carepost-staging".into()));
        assert_eq!(staging.region.as_deref(), Some("eu-west-1"));
        let overridden = Flags { region: Some("us-west-2".into()), endpoint_url: Some("https://x".into()), ..flags() };
        let staging = plan(&overridden, Some(&target("staging"))).unwrap();
        assert_eq!(staging.endpoint, Endpoint::Url("https://x".into()));
        assert_eq!(staging.region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn auth_said_outright_wins_over_the_guess() {
        let signed_local = Flags { auth: Some(AuthMode::Sigv4), token: Some("t".into()), ..flags() };
        assert_eq!(plan(&signed_local, None).unwrap().auth, PlannedAuth::Sigv4);
        let token_remote =
            Flags { auth: Some(AuthMode::Token), endpoint_url: Some("https://x.example".into()), ..flags() };
        assert_eq!(
            plan(&token_remote, None).unwrap().auth,
            PlannedAuth::Token(TokenSource::File(".carepost/admin-token".into()))
        );
    }

    #[test]
    fn a_remote_url_without_a_token_signs_and_a_loopback_one_uses_the_local_token() {
        let remote = Flags { endpoint_url: Some("https://abc.execute-api.eu-west-1.amazonaws.com".into()), ..flags() };
        assert_eq!(plan(&remote, None).unwrap().auth, PlannedAuth::Sigv4);
        let loopback = Flags { endpoint_url: Some("http://localhost:9000".into()), ..flags() };
        assert!(matches!(plan(&loopback, None).unwrap().auth, PlannedAuth::Token(_)));
    }

    #[test]
    fn an_unknown_key_or_target_is_refused_with_the_names_it_knows() {
        let err = parse_targets("[x]\nurl = \"https://x\"\n", Path::new("t.toml")).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field `url`"), "{err:#}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets.toml");
        std::fs::write(&path, FILE).unwrap();
        let err = load_target("prod", Some(&path)).unwrap_err().to_string();
        assert!(err.contains("no target 'prod'") && err.contains("local, production, staging"), "{err}");
    }

    #[test]
    fn the_region_is_read_from_an_execute_api_url() {
        assert_eq!(region_from_url("https://abc.execute-api.eu-west-1.amazonaws.com/").as_deref(), Some("eu-west-1"));
        assert_eq!(region_from_url("https://mail.clinic.example"), None);
    }
}
