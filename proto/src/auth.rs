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
            return Ok(Bearer::none());
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

/// The metadata key naming whom a call is made for (bty-web: the browser's
/// address). btyd records it beside the transport's own view of the caller.
pub const ON_BEHALF_OF: &str = "x-bty-on-behalf-of";

tokio::task_local! {
    static ACTING_FOR: MetadataValue<Ascii>;
}

/// Run `calls` with every call made from this task carrying
/// `x-bty-on-behalf-of: <who>` (non-printable bytes dropped, at most 128).
pub async fn acting_for<F: std::future::Future>(who: &str, calls: F) -> F::Output {
    let printable: String = who
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(128)
        .collect();
    match printable.parse::<MetadataValue<Ascii>>() {
        Ok(value) => ACTING_FOR.scope(value, calls).await,
        Err(_) => calls.await,
    }
}

/// Adds `authorization: Bearer <token>` to every call, and whom it is made
/// for when the calling task set it ([`acting_for`]).
#[derive(Clone, Debug)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// No token (the Unix socket), only whom calls are made for.
    pub fn none() -> Self {
        Self(None)
    }
}

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
        if let Ok(who) = ACTING_FOR.try_with(Clone::clone) {
            request.metadata_mut().insert(ON_BEHALF_OF, who);
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

    #[tokio::test]
    async fn calls_made_for_someone_say_so_and_others_do_not() {
        let mut bearer = Bearer::none();
        let plain = bearer.call(tonic::Request::new(())).unwrap();
        assert!(plain.metadata().get(ON_BEHALF_OF).is_none());
        let request = acting_for("web 192.0.2.7\n\u{7f}x", async {
            bearer.call(tonic::Request::new(())).unwrap()
        })
        .await;
        assert_eq!(
            request.metadata().get(ON_BEHALF_OF).unwrap(),
            "web 192.0.2.7x"
        );
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
