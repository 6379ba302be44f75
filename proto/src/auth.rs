//! What a client needs on btyd's TCP listener: the bearer token on every
//! call, and for `https://` endpoints the CA that signed btyd's
//! certificate. The Unix socket needs neither (its file mode and group are
//! the access control).

use crate::channel::ChannelError;
use std::path::{Path, PathBuf};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig};

/// Debian's (and most distributions') bundle of trusted CAs, used for
/// `https://` endpoints when no CA file is given.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How a client authenticates and checks the server on TCP.
#[derive(Clone, Default)]
pub struct ClientAuth {
    /// `[grpc] token`, sent as `authorization: Bearer …`.
    pub token: Option<String>,
    /// PEM CA certificates to trust for `https://`; unset = the system bundle.
    pub tls_ca: Option<PathBuf>,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("tls_ca", &self.tls_ca)
            .finish()
    }
}

impl ClientAuth {
    /// The interceptor that adds the token (none without one).
    pub fn bearer(&self) -> Result<Bearer, ChannelError> {
        let Some(token) = &self.token else {
            return Ok(Bearer(None));
        };
        let value = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| ChannelError::InvalidToken)?;
        Ok(Bearer(Some(value)))
    }

    /// The TLS settings for an `https://` endpoint: the CA file given, or
    /// the system bundle.
    pub(crate) fn tls(&self) -> Result<ClientTlsConfig, ChannelError> {
        let path = self
            .tls_ca
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
        let pem = read_ca(&path)?;
        Ok(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
    }
}

fn read_ca(path: &Path) -> Result<Vec<u8>, ChannelError> {
    std::fs::read(path).map_err(|source| ChannelError::TlsCa {
        path: path.to_owned(),
        source,
    })
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone, Debug)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_rides_on_every_call_and_is_never_printed() {
        let auth = ClientAuth {
            token: Some("0123456789abcdef\n".to_owned()),
            tls_ca: None,
        };
        assert!(!format!("{auth:?}").contains("0123"));
        let mut bearer = auth.bearer().unwrap();
        let request = bearer.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer 0123456789abcdef"
        );
        let bad = ClientAuth {
            token: Some("line\nbreak".to_owned()),
            tls_ca: None,
        };
        assert!(bad.bearer().is_err());
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let auth = ClientAuth {
            token: None,
            tls_ca: Some("/nonexistent/ca.pem".into()),
        };
        let err = auth.tls().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
