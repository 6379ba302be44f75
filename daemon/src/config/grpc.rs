//! The `[grpc]` section: the Unix socket, and the optional TCP listener
//! with its bearer token and TLS.

use super::{ConfigError, Secret, parse_listen};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[grpc]` section as written.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcSection {
    /// Unix socket path.
    pub socket: Option<PathBuf>,
    /// Optional TCP listener, e.g. `127.0.0.1:50051`; empty = off.
    pub tcp: Option<String>,
    /// Bearer token TCP clients must send (required when `tcp` is set).
    pub token: Option<Secret>,
    /// PEM certificate chain: the TCP listener serves TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Allow a plain (non-TLS) TCP listener off loopback.
    pub insecure: bool,
}

/// The resolved TCP listener.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcTcp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The bearer token every call must carry.
    pub token: Secret,
    /// `(certificate, key)` PEM paths when serving TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Shortest accepted bearer token.
const MIN_TOKEN_LEN: usize = 16;

impl GrpcTcp {
    /// Resolve the listener from the section and `--grpc-tcp`. Refuses a
    /// listener without a real token, half a TLS pair, and plain TCP off
    /// loopback unless `insecure = true` says the risk is accepted: the
    /// token (which drives flashes) would cross the network in clear.
    pub fn resolve(
        section: &GrpcSection,
        flag: Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(addr) = flag
            .or_else(|| section.tcp.clone())
            .map(|a| parse_listen("grpc.tcp", &a))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let token = section
            .token
            .clone()
            .filter(|t| !t.is_blank() && t.expose().trim().len() >= MIN_TOKEN_LEN)
            .ok_or(ConfigError::Invalid {
                key: "grpc.token",
                value: "(missing or short)".to_owned(),
                why: "a TCP listener needs a bearer token of at least 16 characters",
            })?;
        let tls = match (&section.tls_cert, &section.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (cert, _) => {
                return Err(ConfigError::Invalid {
                    key: if cert.is_some() {
                        "grpc.tls_key"
                    } else {
                        "grpc.tls_cert"
                    },
                    value: "(missing)".to_owned(),
                    why: "tls_cert and tls_key go together",
                });
            }
        };
        if tls.is_none() && !section.insecure && !addr.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                key: "grpc.tcp",
                value: addr.to_string(),
                why: "plain TCP off loopback sends the bearer token (which can start \
                      flashes) in clear: set [grpc] tls_cert and tls_key, listen on a \
                      loopback address, or set [grpc] insecure = true to accept the risk",
            });
        }
        Ok(Some(Self { addr, token, tls }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(tcp: &str) -> GrpcSection {
        GrpcSection {
            tcp: Some(tcp.to_owned()),
            token: Some(Secret::new("0123456789abcdef0123")),
            ..GrpcSection::default()
        }
    }

    #[test]
    fn plain_tcp_off_loopback_needs_tls_or_insecure() {
        let err = GrpcTcp::resolve(&section("0.0.0.0:50051"), None).unwrap_err();
        assert!(err.to_string().contains("tls_cert"), "{err}");
        let tls = GrpcSection {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..section("0.0.0.0:50051")
        };
        assert!(GrpcTcp::resolve(&tls, None).unwrap().unwrap().tls.is_some());
        let insecure = GrpcSection {
            insecure: true,
            ..section("0.0.0.0:50051")
        };
        assert!(GrpcTcp::resolve(&insecure, None).is_ok());
        assert!(GrpcTcp::resolve(&section("127.0.0.1:50051"), None).is_ok());
    }

    #[test]
    fn a_listener_needs_a_real_token_and_both_tls_files() {
        let no_token = GrpcSection {
            token: Some(Secret::new("short")),
            ..section("127.0.0.1:1")
        };
        assert!(GrpcTcp::resolve(&no_token, None).is_err());
        let half = GrpcSection {
            tls_cert: Some("c.pem".into()),
            ..section("127.0.0.1:1")
        };
        let err = GrpcTcp::resolve(&half, None).unwrap_err();
        assert!(err.to_string().contains("grpc.tls_key"), "{err}");
        assert!(matches!(
            GrpcTcp::resolve(&GrpcSection::default(), None),
            Ok(None)
        ));
    }
}
