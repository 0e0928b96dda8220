//! TXT records over DNS (hickory-resolver), for `carepost doctor`'s DMARC
//! check: the system's resolver, or one name server given as `IP:PORT`.

use std::net::SocketAddr;

use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveErrorKind, TokioResolver};

use crate::ports::{LookupError, TxtRecords};

pub struct DnsTxt {
    resolver: TokioResolver,
}

impl DnsTxt {
    /// The resolver of `/etc/resolv.conf`.
    pub fn system() -> Result<Self, LookupError> {
        let resolver = TokioResolver::builder_tokio()
            .map_err(|e| LookupError { name: "/etc/resolv.conf".to_owned(), source: Some(Box::new(e)) })?
            .build();
        Ok(Self { resolver })
    }

    /// One name server, over UDP with TCP for long answers.
    pub fn at(server: SocketAddr) -> Self {
        let servers = NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true);
        let config = ResolverConfig::from_parts(None, vec![], servers);
        let resolver = TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).build();
        Self { resolver }
    }
}

#[async_trait]
impl TxtRecords for DnsTxt {
    async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        // A trailing dot: the name is absolute, never tried under a search domain.
        let absolute = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(absolute).await {
            Ok(answer) => Ok(answer
                .iter()
                .map(|txt| txt.txt_data().iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                .collect()),
            Err(e) if matches!(e.kind(), ResolveErrorKind::Proto(p) if p.is_no_records_found() || p.is_nx_domain()) => {
                Ok(Vec::new())
            }
            Err(e) => Err(LookupError { name: name.to_owned(), source: Some(Box::new(e)) }),
        }
    }
}
